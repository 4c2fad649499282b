"""Nurture: lists, email templates, sequences, enrollments and the send log.

Invariants live in constraints: one default "community" list per organization,
one membership row per (list, lead), one live enrollment per (sequence, lead),
and the exactly-once key of a sequence email — one EmailMessage per
(enrollment, step), written before the SMTP call.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from leadflow.core.orgfacts import org_fact_forget
from leadflow.core.tenancy import TenantModel


class ListKind(models.TextChoices):
    STATIC = "static", "Static"
    DYNAMIC = "dynamic", "Dynamic (saved filter)"


class NurtureList(TenantModel):
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=ListKind.choices, default=ListKind.STATIC)
    description = models.CharField(max_length=300, blank=True)
    # A saved lead filter (see nurture.services.lists.FILTER_KEYS); dynamic lists only.
    filter = models.JSONField(default=dict, blank=True)
    is_default_community = models.BooleanField(default=False)
    member_count = models.PositiveIntegerField(default=0)  # kept by the list services
    refreshed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="nurture_list_name_unique"
            ),
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(is_default_community=True),
                name="nurture_one_community_list",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    # The single-lead path caches whether any list is dynamic (orgfacts); a
    # save that leaves the kind alone (member counts, refresh times) keeps it.
    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "kind" in update_fields:
            org_fact_forget("dynamic_lists", self.organization_id)

    def delete(self, *args, **kwargs):
        org_fact_forget("dynamic_lists", self.organization_id)
        return super().delete(*args, **kwargs)

    @property
    def is_dynamic(self) -> bool:
        return self.kind == ListKind.DYNAMIC


class MembershipSource(models.TextChoices):
    MANUAL = "manual", "Added by hand"
    IMPORT = "import", "Import"
    ACTION = "action", "Bulk action"
    FILTER = "filter", "Matched the filter"
    RECYCLED = "recycled", "Recycled"


class ListMembership(TenantModel):
    """A lead on a list. Removal keeps the row (removed_at) so growth can be charted."""

    list = models.ForeignKey(NurtureList, on_delete=models.CASCADE, related_name="memberships")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField()
    source = models.CharField(max_length=10, choices=MembershipSource.choices)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["list", "lead"], name="nurture_list_member_unique")
        ]
        indexes = [
            models.Index(fields=["organization", "list", "removed_at"]),
            models.Index(fields=["organization", "lead"]),
            # The members page: newest first, by keyset (leadflow.core.pagination).
            models.Index(fields=["organization", "list", "added_at"]),
        ]


class EmailTemplate(TenantModel):
    name = models.CharField(max_length=200)
    subject = models.CharField(max_length=300)
    body_html = models.TextField(help_text="Sanitized on save; merge fields like {{ first_name }}.")
    body_text = models.TextField(blank=True, help_text="Generated from the HTML when blank.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="nurture_template_name_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Trigger(models.TextChoices):
    JOINS_LIST = "joins_list", "Joins a list"
    RECYCLED = "recycled", "Is recycled"
    FORM = "form", "Is created by a form"


class ExitCondition(models.TextChoices):
    MQL = "mql", "Becomes an MQL"
    SQL = "sql", "Becomes an SQL"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribes"
    REPLIED = "replied", "Replies"
    BOUNCED = "bounced", "Bounces"


class Sequence(TenantModel):
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=False)
    # [{"type": "joins_list", "list_id": 1}, {"type": "recycled"}, {"type": "form", "form_id": 2}]
    entry_triggers = models.JSONField(default=list, blank=True)
    exit_on = models.JSONField(default=list, blank=True)  # ExitCondition values
    # {"days": [0..6] (Monday=0), "start": "09:00", "end": "17:00"} or null (any time)
    send_window = models.JSONField(null=True, blank=True)
    timezone = models.CharField(max_length=64, blank=True, help_text="Blank: the organization's.")
    from_name = models.CharField(max_length=120, blank=True)
    from_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="nurture_sequence_name_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name


class SequenceStep(TenantModel):
    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()  # 1, 2, 3… contiguous (services keep it)
    delay_days = models.PositiveSmallIntegerField(default=0)
    delay_hours = models.PositiveSmallIntegerField(default=0)
    template = models.ForeignKey(EmailTemplate, on_delete=models.PROTECT, related_name="steps")

    class Meta:
        ordering = ["sequence", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["sequence", "position"], name="nurture_step_position_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Step {self.position}"


class EnrollmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    EXITED = "exited", "Exited"
    STOPPED = "stopped", "Stopped"


LIVE_ENROLLMENT = (EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED)


class Enrollment(TenantModel):
    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="enrollments")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(
        max_length=10, choices=EnrollmentStatus.choices, default=EnrollmentStatus.ACTIVE
    )
    current_step = models.PositiveSmallIntegerField(default=1)  # position of the NEXT step
    next_send_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=40, blank=True)
    enrolled_at = models.DateTimeField()
    exited_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=40, blank=True)
    # Its last dispatched email is not sent yet: the enrollment waits on that
    # step (no next step, never "completed") until the email is sent or fails.
    awaiting_send = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sequence", "lead"],
                condition=Q(status__in=["active", "paused"]),
                name="nurture_one_live_enrollment",
            )
        ]
        indexes = [
            models.Index(fields=["organization", "status", "next_send_at"]),
            models.Index(fields=["organization", "sequence", "status"]),
            models.Index(fields=["organization", "lead"]),
        ]


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    # Handed to the SMTP server (its final dot was sent) but the worker died
    # before the answer was recorded: almost surely delivered; never resent
    # automatically (see messages_send()).
    UNCONFIRMED = "unconfirmed", "Unconfirmed"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    BOUNCED = "bounced", "Bounced"


class EmailMessage(TenantModel):
    """The send log: one row per email, written before the SMTP call."""

    # Not a column: the organization's sender settings, set by the sender right
    # before a channel delivers the row (DKIM key, Reply-To; read with getattr).
    sender_settings: NurtureSettings

    enrollment = models.ForeignKey(
        Enrollment, null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    step = models.ForeignKey(
        SequenceStep, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    is_test = models.BooleanField(default=False)
    to_email = models.CharField(max_length=254)
    from_email = models.CharField(max_length=320)
    subject = models.CharField(max_length=300)
    html = models.TextField()
    text = models.TextField()
    message_id = models.CharField(max_length=200, unique=True)  # RFC 5322 Message-ID
    status = models.CharField(
        max_length=12, choices=MessageStatus.choices, default=MessageStatus.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)  # the last attempt's error
    queued_at = models.DateTimeField()  # written once: the retry window counts from here
    # Transient failures: when the message may be tried again (queued only).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When a send task for it was last put on the broker (a lost one is re-enqueued).
    enqueued_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # Committed just before the DATA command's final dot: set on a message
    # still "sending" means the server may have accepted it.
    handed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    machine_open = models.BooleanField(default=False)
    machine_click = models.BooleanField(default=False)
    links = models.JSONField(default=list, blank=True)  # the tracked URLs, by index

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "step"], name="nurture_message_once")
        ]
        indexes = [
            models.Index(fields=["organization", "status", "queued_at"]),
            models.Index(fields=["organization", "status", "next_attempt_at"]),
            models.Index(fields=["organization", "queued_at"]),
            models.Index(fields=["organization", "lead"]),
        ]

    def __str__(self) -> str:
        return f"{self.subject} → {self.to_email}"


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "hard_bounce", "Hard bounce"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribed"
    COMPLAINT = "complaint", "Spam complaint"
    MANUAL = "manual", "Added by hand"


class Suppression(TenantModel):
    """An address never to email again (normalized, per organization)."""

    email = models.CharField(max_length=254)
    reason = models.CharField(max_length=12, choices=SuppressionReason.choices)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email"], name="nurture_suppression_unique"
            )
        ]

    def __str__(self) -> str:
        return self.email


class Unsubscribe(TenantModel):
    """Who unsubscribed, when, why, and from which message (append-only)."""

    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    email = models.CharField(max_length=254)
    reason = models.CharField(max_length=500, blank=True)
    occurred_at = models.DateTimeField()
    message = models.ForeignKey(
        EmailMessage,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="unsubscribes",
    )

    class Meta:
        indexes = [models.Index(fields=["organization", "occurred_at"])]


class NurtureSettings(TenantModel):
    throttle_per_minute = models.PositiveIntegerField(
        default=600, help_text="Emails this organization may send per minute."
    )
    from_name = models.CharField(max_length=120, blank=True)
    from_email = models.EmailField(blank=True)
    physical_address = models.TextField(
        blank=True, help_text="Postal address shown in every email's footer (CAN-SPAM)."
    )
    # The from-address is "unverified" until the link emailed to it is clicked;
    # changing the address clears this (nurture.services.sender).
    from_email_verified_at = models.DateTimeField(null=True, blank=True)
    verification_sent_at = models.DateTimeField(null=True, blank=True)
    verification_error = models.CharField(max_length=300, blank=True)
    reply_to = models.EmailField(blank=True)
    # DKIM: the selector and public key are published in DNS; the private key is
    # stored encrypted with the server's secret key (nurture.dkim) and never shown.
    dkim_selector = models.CharField(max_length=63, blank=True)
    dkim_public_key = models.TextField(blank=True)
    dkim_private_key = models.TextField(blank=True, editable=False)

    class Meta:
        verbose_name_plural = "nurture settings"
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="nurture_settings_one_per_org")
        ]


# --- One-to-one email: a rep writes to a lead, the lead answers ---------------------------


class DirectEmailStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    # A transient failure (SMTP outage, 4xx): queued again at next_attempt_at.
    DEFERRED = "deferred", "Deferred"
    # Handed to the server, its answer lost: probably delivered, never resent automatically.
    UNCONFIRMED = "unconfirmed", "Unconfirmed"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class DirectEmail(TenantModel):
    """The ledger of a rep's email to a lead: one row per email, written (with
    its EMAIL_SENT activity) before any delivery; the send task claims it
    (queued/deferred → sending) so a retry never sends it twice."""

    # Not a column: the organization's sender settings, set by the sender right
    # before a channel delivers the row (DKIM key, Reply-To; read with getattr).
    sender_settings: NurtureSettings

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="+")
    sender = models.ForeignKey(
        "accounts.Membership", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_email = models.CharField(max_length=254)
    from_name = models.CharField(max_length=200)  # the rep, e.g. "Ann Rep (Acme)"
    from_email = models.CharField(max_length=320)  # the organization's sender address
    reply_to = models.CharField(max_length=320)  # the thread's inbound plus-address
    subject_template = models.CharField(max_length=300)  # as the rep wrote it (merge fields)
    body_template = models.TextField()  # as the rep wrote it (merge fields)
    subject = models.CharField(max_length=300)  # rendered: what the lead gets
    text = models.TextField()
    html = models.TextField()
    message_id = models.CharField(max_length=200, unique=True)
    thread_token = models.CharField(max_length=40, unique=True)
    status = models.CharField(
        max_length=12, choices=DirectEmailStatus.choices, default=DirectEmailStatus.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    queued_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    handed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "lead", "queued_at"]),
            models.Index(fields=["organization", "status", "next_attempt_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.subject} → {self.to_email}"


class InboundMailbox(TenantModel):
    """The organization's inbound address and the webhook its mail provider calls.

    key: the unguessable part of the webhook URL (names the tenant); secret:
    the HMAC key of the signature (shown to an admin once, on rotation);
    address_name: the local part of the reply address (reply-<x>+<thread>@domain)."""

    key = models.CharField(max_length=64, unique=True)
    secret = models.CharField(max_length=128)
    address_name = models.CharField(max_length=64, unique=True)
    rotated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="nurture_one_inbound_mailbox")
        ]


class InboundStatus(models.TextChoices):
    MATCHED = "matched", "Matched to a thread"
    UNMATCHED = "unmatched", "Unmatched"
    ATTACHED = "attached", "Attached to a lead by hand"
    DISMISSED = "dismissed", "Dismissed"


class InboundMail(TenantModel):
    """Every reply the provider posted, kept as received (matched or not): a
    reply to no known thread waits in the "unmatched" list for an admin."""

    message_id = models.CharField(max_length=300)
    from_email = models.CharField(max_length=320)
    to = models.TextField(blank=True)
    subject = models.CharField(max_length=300, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    in_reply_to = models.CharField(max_length=300, blank=True)
    references = models.TextField(blank=True)
    received_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=InboundStatus.choices)
    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    direct_email = models.ForeignKey(
        DirectEmail, null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    handled_by = models.ForeignKey(
        "accounts.Membership", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            # A provider's retry of the same reply records nothing twice.
            models.UniqueConstraint(
                fields=["organization", "message_id"], name="nurture_inbound_once"
            )
        ]
        indexes = [models.Index(fields=["organization", "status", "received_at"])]


class InboundRejection(TenantModel):
    """A webhook call refused (bad, missing or stale signature; bad payload), for the admin."""

    reason = models.CharField(max_length=200)
    remote_addr = models.CharField(max_length=64, blank=True)
    body_excerpt = models.TextField(blank=True)
    received_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["organization", "received_at"])]
