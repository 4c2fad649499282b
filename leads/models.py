"""Leads and everything captured about them. All rows are tenant-owned.

History is append-only: activities and form submissions are never updated in
place by services (apart from a submission's processing outcome) and never
deleted when leads are merged or discarded.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_scopes import ScopedManager

from leadflow.core.orgfacts import org_fact_forget
from leadflow.core.tenancy import TenantModel


class Channel(models.TextChoices):
    ORGANIC_SEARCH = "organic_search", "Organic search"
    PAID_SEARCH = "paid_search", "Paid search"
    SOCIAL = "social", "Social"
    PAID_SOCIAL = "paid_social", "Paid social"
    EMAIL = "email", "Email"
    EVENT = "event", "Event"
    WEBINAR = "webinar", "Webinar"
    REFERRAL = "referral", "Referral"
    PARTNER = "partner", "Partner"
    DIRECT = "direct", "Direct"
    PURCHASED_LIST = "purchased_list", "Purchased list"
    CONTENT = "content", "Content syndication"
    OTHER = "other", "Other"


class Quality(models.TextChoices):
    OK = "ok", "OK"
    SUSPECT = "suspect", "Suspect"
    JUNK = "junk", "Junk"


class ScoreGrade(models.TextChoices):
    """Fit grade written by the scoring engine (A best)."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    F = "F"


class ScoreBand(models.TextChoices):
    """Temperature of the total score, written by the scoring engine."""

    HOT = "hot", "Hot"
    WARM = "warm", "Warm"
    COLD = "cold", "Cold"


class LeadStage(models.TextChoices):
    """Where a lead is in the funnel. Changed only by pipeline.services.stage_transition."""

    NEW = "new", "New"
    MQL = "mql", "MQL"
    SAL = "sal", "Sales accepted"
    SQL = "sql", "Sales qualified"
    OPPORTUNITY = "opportunity", "Opportunity"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    RECYCLED = "recycled", "Recycled"
    DISQUALIFIED = "disqualified", "Disqualified"


class MqlSource(models.TextChoices):
    SCORE = "score", "Score over threshold"
    PQL = "pql", "Product usage (PQL)"
    MANUAL = "manual", "Marked by hand"


class Campaign(TenantModel):
    """A lead source with its cost (for CPL/CPA/ROI) and the UTM values that identify it."""

    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=32, choices=Channel.choices, default=Channel.OTHER)
    cost = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    starts_on = models.DateField(null=True, blank=True)
    ends_on = models.DateField(null=True, blank=True)
    utm_source = models.CharField(max_length=200, blank=True)
    utm_medium = models.CharField(max_length=200, blank=True)
    utm_campaign = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="campaign_name_unique"),
            models.CheckConstraint(condition=Q(cost__gte=0), name="campaign_cost_not_negative"),
        ]
        indexes = [models.Index(fields=["organization", "utm_campaign"])]

    def __str__(self) -> str:
        return self.name


class Company(TenantModel):
    """A B2B account; several leads (a buying committee) can belong to it."""

    name = models.CharField(max_length=200, blank=True)
    domain = models.CharField(max_length=253, null=True, blank=True)
    industry = models.CharField(max_length=120, blank=True)
    employee_count = models.PositiveIntegerField(null=True, blank=True)
    annual_revenue = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    country = models.CharField(max_length=2, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "companies"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "domain"],
                condition=Q(domain__isnull=False),
                name="company_domain_unique",
            )
        ]
        indexes = [models.Index(fields=["organization", "name"])]

    def __str__(self) -> str:
        return self.name or self.domain or f"Company {self.pk}"


class Lead(TenantModel):
    """A person. Identified by email (normalized) or, for CRM/list imports that
    carry no email, by the sender's record id (external_id); both unique per org."""

    email = models.CharField(
        max_length=254, blank=True, help_text="Normalized: trimmed, lower-case."
    )
    external_id = models.CharField(max_length=200, null=True, blank=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    title = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=32, blank=True, help_text="E.164 when it parsed.")
    company = models.ForeignKey(
        Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads"
    )
    company_name = models.CharField(max_length=200, blank=True)
    industry = models.CharField(max_length=120, blank=True)
    company_size = models.PositiveIntegerField(null=True, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    city = models.CharField(max_length=120, blank=True)

    first_source = models.CharField(max_length=32, choices=Channel.choices, blank=True)
    first_campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_touch_at = models.DateTimeField(null=True, blank=True)
    latest_source = models.CharField(max_length=32, choices=Channel.choices, blank=True)
    latest_campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    latest_touch_at = models.DateTimeField(null=True, blank=True)

    email_opt_in = models.BooleanField(default=False)
    email_opt_in_at = models.DateTimeField(null=True, blank=True)
    email_opt_in_origin = models.CharField(max_length=200, blank=True)
    do_not_email = models.BooleanField(default=False)
    do_not_call = models.BooleanField(default=False)

    owner = models.ForeignKey(
        "accounts.Membership",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_leads",
    )
    custom = models.JSONField(default=dict, blank=True)

    quality = models.CharField(max_length=10, choices=Quality.choices, default=Quality.OK)
    quality_reasons = models.JSONField(default=list, blank=True)
    corrections = models.JSONField(default=dict, blank=True, help_text="field -> original value")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    discarded_at = models.DateTimeField(null=True, blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_from"
    )

    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)

    # Written by the scoring engine (scoring.engine), never by hand.
    fit_score = models.IntegerField(default=0)
    engagement_score = models.IntegerField(default=0)
    score = models.IntegerField(default=0)
    grade = models.CharField(max_length=1, blank=True, choices=ScoreGrade.choices)
    band = models.CharField(max_length=8, blank=True, choices=ScoreBand.choices)
    score_breakdown = models.JSONField(default=dict, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)
    mql_eligible = models.BooleanField(default=False)
    mql_changed_at = models.DateTimeField(null=True, blank=True)
    gating_reason = models.CharField(max_length=200, blank=True)

    # Written by the pipeline (pipeline.services), never by hand.
    stage = models.CharField(max_length=16, choices=LeadStage.choices, default=LeadStage.NEW)
    stage_changed_at = models.DateTimeField(null=True, blank=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    is_pql = models.BooleanField(default=False)
    mql_source = models.CharField(max_length=8, choices=MqlSource.choices, blank=True)

    class Meta:
        constraints = [
            # email is stored normalized (lower-case), so this is case-insensitive.
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=~Q(email=""),
                name="lead_email_unique",
            ),
            models.UniqueConstraint(
                fields=["organization", "external_id"],
                condition=Q(external_id__isnull=False),
                name="lead_external_id_unique",
            ),
            models.CheckConstraint(
                condition=~Q(email="") | Q(external_id__isnull=False), name="lead_has_identity"
            ),
            models.CheckConstraint(
                condition=Q(quality__in=["ok", "suspect", "junk"]), name="lead_quality_valid"
            ),
            models.CheckConstraint(
                condition=Q(stage__in=LeadStage.values), name="lead_stage_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "created_at"]),
            models.Index(fields=["organization", "quality", "reviewed_at"]),
            models.Index(fields=["organization", "owner"]),
            models.Index(fields=["organization", "company"]),
            models.Index(fields=["organization", "phone"]),
            models.Index(fields=["organization", "last_name", "first_name"]),
            models.Index(fields=["organization", "first_campaign"]),
            models.Index(fields=["organization", "country"]),
            models.Index(fields=["organization", "score"]),
            models.Index(fields=["organization", "updated_at"]),  # CRM sync via the API
            models.Index(fields=["organization", "mql_eligible"]),
            models.Index(fields=["organization", "stage"]),
            models.Index(fields=["organization", "owner", "stage"]),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email or f"#{self.external_id}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_active(self) -> bool:
        return self.discarded_at is None and self.merged_into_id is None


class ActivityKind(models.TextChoices):
    FORM_SUBMIT = "form_submit", "Form submitted"
    PAGE_VIEW = "page_view", "Page view"
    EMAIL_OPEN = "email_open", "Email opened"
    EMAIL_CLICK = "email_click", "Email clicked"
    EMAIL_UNSUBSCRIBE = "email_unsubscribe", "Unsubscribed"
    # One-to-one mail between a rep and the lead (not nurture): sent, and the lead's answer.
    EMAIL_SENT = "email_sent", "Email sent"
    EMAIL_REPLIED = "email_replied", "Email replied"
    DEMO_REQUEST = "demo_request", "Demo request"
    TRIAL_SIGNUP = "trial_signup", "Trial sign-up"
    PRODUCT_EVENT = "product_event", "Product event"
    CONTENT_DOWNLOAD = "content_download", "Content download"
    WEBINAR = "webinar", "Webinar"
    CALL = "call", "Call"
    MEETING = "meeting", "Meeting"
    NOTE = "note", "Note"
    IMPORT = "import", "Imported"


class Activity(TenantModel):
    """A touchpoint. Append-only: services create activities and never change them."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="activities")
    kind = models.CharField(max_length=32, choices=ActivityKind.choices)
    occurred_at = models.DateTimeField()
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="activities"
    )
    properties = models.JSONField(default=dict, blank=True)
    # Idempotency key from the sender (API batches are retried by clients).
    external_id = models.CharField(max_length=200, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "activities"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "external_id"],
                condition=Q(external_id__isnull=False),
                name="activity_external_id_unique",
            )
        ]
        indexes = [
            models.Index(fields=["organization", "lead", "occurred_at"]),
            models.Index(fields=["organization", "kind", "occurred_at"]),
            models.Index(fields=["organization", "campaign"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.occurred_at:%Y-%m-%d %H:%M}"


def _form_key() -> str:
    return secrets.token_urlsafe(12)


class CaptureForm(TenantModel):
    """A form an admin designs; its public page is /f/<key>/ (unguessable key)."""

    name = models.CharField(max_length=200)
    key = models.CharField(max_length=32, unique=True, default=_form_key, editable=False)
    default_campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="forms"
    )
    activity_kind = models.CharField(
        max_length=32,
        choices=ActivityKind.choices,
        default=ActivityKind.FORM_SUBMIT,
        help_text="What a submission means: e.g. a demo request or a content download.",
    )
    submit_label = models.CharField(max_length=60, default="Submit")
    success_message = models.TextField(default="Thank you! We'll be in touch shortly.")
    redirect_url = models.URLField(blank=True)
    consent_text = models.TextField(
        blank=True, help_text="Shown next to the opt-in checkbox; stored with the consent."
    )
    is_active = models.BooleanField(default=True)
    min_fill_seconds = models.PositiveSmallIntegerField(
        default=2, help_text="Faster submissions are treated as bots."
    )
    double_opt_in = models.BooleanField(
        default=False,
        help_text="Ask for confirmation by email: consent counts only once its link is clicked.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="form_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class FieldType(models.TextChoices):
    TEXT = "text", "Text"
    EMAIL = "email", "Email"
    PHONE = "phone", "Phone"
    SELECT = "select", "Select"
    CHECKBOX = "checkbox", "Checkbox"
    HIDDEN = "hidden", "Hidden"
    TEXTAREA = "textarea", "Text area"
    COUNTRY = "country", "Country"


# Lead fields a capture form field (or an import column) may fill.
MAPPABLE_LEAD_FIELDS: dict[str, str] = {
    "email": "Email",
    "external_id": "Record ID (from your CRM or list)",
    "first_name": "First name",
    "last_name": "Last name",
    "title": "Job title",
    "phone": "Phone",
    "company_name": "Company",
    "industry": "Industry",
    "company_size": "Company size (employees)",
    "country": "Country",
    "city": "City",
    "email_opt_in": "Email opt-in",
    "do_not_email": "Do not email",
    "do_not_call": "Do not call",
}
CUSTOM = "custom"


class CaptureFormField(TenantModel):
    form = models.ForeignKey(CaptureForm, on_delete=models.CASCADE, related_name="fields")
    position = models.PositiveSmallIntegerField(default=0)
    key = models.SlugField(max_length=60)
    label = models.CharField(max_length=200)
    field_type = models.CharField(max_length=16, choices=FieldType.choices, default=FieldType.TEXT)
    required = models.BooleanField(default=False)
    options = models.JSONField(default=list, blank=True, help_text="Choices of a select field.")
    maps_to = models.CharField(
        max_length=40, default=CUSTOM, help_text="A lead field, or 'custom' for an attribute."
    )
    help_text = models.CharField(max_length=300, blank=True)
    default_value = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["form", "key"], name="form_field_key_unique")
        ]

    def __str__(self) -> str:
        return self.label


class SubmissionOutcome(models.TextChoices):
    PENDING = "pending", "Pending"
    CREATED = "created", "Lead created"
    MERGED = "merged", "Merged into lead"
    JUNK = "junk", "Junk"
    SPAM = "spam", "Spam"
    INVALID = "invalid", "Invalid"


class SubmissionChannel(models.TextChoices):
    FORM = "form", "Hosted form"
    API = "api", "API"


class FormSubmission(TenantModel):
    """The raw payload exactly as received, stored before anything else happens."""

    form = models.ForeignKey(
        CaptureForm, null=True, blank=True, on_delete=models.SET_NULL, related_name="submissions"
    )
    channel = models.CharField(
        max_length=10, choices=SubmissionChannel.choices, default=SubmissionChannel.FORM
    )
    payload = models.JSONField()
    ip_hash = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    referrer = models.CharField(max_length=2000, blank=True)
    page_url = models.CharField(max_length=2000, blank=True)
    utm = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    outcome = models.CharField(
        max_length=10, choices=SubmissionOutcome.choices, default=SubmissionOutcome.PENDING
    )
    outcome_reasons = models.JSONField(default=list, blank=True)
    lead = models.ForeignKey(
        Lead, null=True, blank=True, on_delete=models.SET_NULL, related_name="submissions"
    )

    class Meta:
        indexes = [
            models.Index(fields=["organization", "form", "received_at"]),
            models.Index(fields=["organization", "lead"]),
            models.Index(
                fields=["received_at"],
                condition=Q(processed_at__isnull=True),
                name="submission_unprocessed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Submission {self.pk} ({self.outcome})"


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportJob(TenantModel):
    created_by = models.ForeignKey(
        "accounts.User", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    file = models.FileField(upload_to="imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField(default=0)
    encoding = models.CharField(max_length=40, blank=True)
    delimiter = models.CharField(max_length=4, blank=True)
    header = models.JSONField(default=list, blank=True)
    mapping = models.JSONField(default=dict, blank=True, help_text="column -> lead field")
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    consent_basis = models.CharField(max_length=40, blank=True)
    status = models.CharField(
        max_length=10, choices=ImportStatus.choices, default=ImportStatus.UPLOADED
    )
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    merged_count = models.PositiveIntegerField(default=0)
    junk_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    error_report = models.FileField(upload_to="imports/errors/%Y/%m/", blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Recovery: when a run was last sent to the broker, the lease of the run
    # holding the job (a random token) and its heartbeat, renewed every chunk.
    queued_at = models.DateTimeField(null=True, blank=True)
    runner = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    resumed_count = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "created_at"]),
            # The stale-job sweep reads active jobs across tenants.
            models.Index(
                fields=["status", "heartbeat_at"],
                name="leads_importjob_active",
                condition=models.Q(status__in=["queued", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"Import {self.original_name}"

    def _long_ago(self, moment) -> bool:
        stale_after = timedelta(seconds=settings.LEADS_IMPORT_STALE_SECONDS)
        return moment is None or moment < timezone.now() - stale_after

    @property
    def last_sign_of_life(self):
        """A running job's last heartbeat; a queued job's last (re)queueing."""
        if self.status == ImportStatus.RUNNING:
            return self.heartbeat_at
        return self.queued_at or self.created_at

    @property
    def stalled(self) -> bool:
        """Queued or running, but no sign of life for the stale limit: its worker
        died or its task was lost. Its lease is free; a new run resumes it."""
        active = self.status in (ImportStatus.QUEUED, ImportStatus.RUNNING)
        return active and self._long_ago(self.last_sign_of_life)

    @property
    def sweep_due(self) -> bool:
        """Stalled, and not re-sent within the stale limit either."""
        return self.stalled and self._long_ago(self.queued_at)

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == ImportStatus.DONE else 0
        return min(100, round(100 * self.processed_rows / self.total_rows))


class LeadMerge(TenantModel):
    """Who merged which lead into which, with the dropped lead's values as they were."""

    kept = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="merges_kept")
    dropped = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="merges_dropped")
    merged_by = models.ForeignKey(
        "accounts.User", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    merged_at = models.DateTimeField(auto_now_add=True)
    chosen = models.JSONField(default=dict, help_text="field -> 'kept' or 'dropped'")
    dropped_snapshot = models.JSONField(default=dict)
    # What undo needs: the kept lead's values before the merge, the ids of the
    # rows moved from the dropped lead, and what each hook receiver changed.
    kept_snapshot = models.JSONField(default=dict)
    moved = models.JSONField(default=dict)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["organization", "merged_at"])]


# --- Consent and privacy -------------------------------------------------------------


class AppendOnlyError(Exception):
    """An update or delete of a row that is append-only."""


class AppendOnlyQuerySet(models.QuerySet):
    """Refuses bulk updates and deletes; `erase()` is the one way rows leave
    (a person's erasure, nothing else)."""

    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} is append-only: rows are never updated.")

    def delete(self):
        raise AppendOnlyError(f"{self.model.__name__} is append-only: rows are never deleted.")

    def erase(self) -> int:
        """Delete these rows for a right-to-erasure request (privacy services only)."""
        return self._raw_delete(self.db)

    erase.queryset_only = True


class ConsentAction(models.TextChoices):
    GIVEN = "given", "Consent given"
    WITHDRAWN = "withdrawn", "Consent withdrawn"


class ConsentSource(models.TextChoices):
    FORM = "form", "Form"
    IMPORT = "import", "Import"
    API = "api", "API"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe"
    OTHER = "other", "Other"


class ConsentRecord(TenantModel):
    """The consent ledger: one row per consent given or withdrawn, with the text the
    person saw. Append-only: saving an existing row, deleting one and the queryset's
    update()/delete() raise AppendOnlyError (erasure uses `erase()`)."""

    lead = models.ForeignKey(
        Lead, null=True, blank=True, on_delete=models.SET_NULL, related_name="consents"
    )
    email = models.CharField(max_length=254)
    action = models.CharField(max_length=10, choices=ConsentAction.choices)
    text = models.TextField(blank=True, help_text="The consent text exactly as shown.")
    occurred_at = models.DateTimeField(default=timezone.now)
    ip_hash = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=12, choices=ConsentSource.choices)
    detail = models.CharField(max_length=200, blank=True)

    objects = ScopedManager(
        organization="organization",
        _manager_class=models.Manager.from_queryset(AppendOnlyQuerySet),
    )

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        indexes = [
            models.Index(fields=["organization", "email"]),
            models.Index(fields=["organization", "occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.email}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("ConsentRecord is append-only: rows are never updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("ConsentRecord is append-only: rows are never deleted.")


class ConsentConfirmation(TenantModel):
    """A double opt-in waiting for its link to be clicked: one per submission that
    ticked consent on a form that asks for confirmation. `sent_at` marks the email
    sent (a retried task skips), `confirmed_at` the click."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+")
    email = models.CharField(max_length=254)
    form = models.ForeignKey(
        CaptureForm, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submission = models.OneToOneField(
        "FormSubmission", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    consent_text = models.TextField()
    requested_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    send_error = models.CharField(max_length=300, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "lead"])]

    def __str__(self) -> str:
        return f"Opt-in confirmation for {self.email}"


class ErasedPerson(TenantModel):
    """The suppression left by an erasure: a salted SHA-256 of the normalized email
    (never the address), so the person is neither re-imported nor emailed again."""

    email_hash = models.CharField(max_length=64)
    erased_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email_hash"], name="erased_person_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Erased person {self.email_hash[:12]}"

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        # Ingest skips its suppression query while the organization has no erasures.
        org_fact_forget("erasures", self.organization_id)


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ExportJob(TenantModel):
    """A lead CSV export too large to stream in the request: a worker writes the
    file; the page shows its progress and then a download link."""

    membership = models.ForeignKey(
        "accounts.Membership", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    query = models.TextField(blank=True, help_text="The lead list's filter query string.")
    columns = models.JSONField(default=list)
    status = models.CharField(
        max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to="exports/%Y/%m/", blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "created_at"])]

    def __str__(self) -> str:
        return f"Lead export {self.pk}"

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == ExportStatus.DONE else 0
        return min(100, round(100 * self.processed_rows / self.total_rows))


# --- Duplicates ---------------------------------------------------------------------


class DuplicateKeyKind(models.TextChoices):
    PHONE = "phone", "Same phone"
    EMAIL = "email", "Same mailbox"
    NAME = "name", "Same name at the same company"


class DuplicateKey(TenantModel):
    """A blocking key of a lead: leads sharing a (kind, value) are compared.

    Kept by leads.duplicates for every live lead (one row per lead and kind it
    has a value for), so candidates are found with one indexed self-join."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=DuplicateKeyKind.choices)
    value = models.CharField(max_length=254)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "lead", "kind"], name="duplicate_key_one_per_kind"
            )
        ]
        indexes = [models.Index(fields=["organization", "kind", "value"])]


class CandidateStatus(models.TextChoices):
    OPEN = "open", "Open"
    DISMISSED = "dismissed", "Not a duplicate"
    MERGED = "merged", "Merged"


class DuplicateCandidate(TenantModel):
    """Two leads that look like one person: the pair (lower id first), a score
    from 0 to 100 (rapidfuzz over names, mailbox and company) and the keys they
    share. Stored, so the review page reads a table instead of comparing."""

    lead_a = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+")
    lead_b = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="+")
    score = models.PositiveSmallIntegerField()
    reasons = models.JSONField(default=list)
    status = models.CharField(
        max_length=10, choices=CandidateStatus.choices, default=CandidateStatus.OPEN
    )
    found_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "lead_a", "lead_b"], name="duplicate_pair_unique"
            ),
            models.CheckConstraint(
                condition=Q(lead_a__lt=models.F("lead_b")), name="duplicate_pair_ordered"
            ),
        ]
        indexes = [
            # The review page: open pairs, best first, keyset by (score, id).
            models.Index(fields=["organization", "status", "-score", "-id"]),
            models.Index(fields=["organization", "lead_b"]),
        ]
