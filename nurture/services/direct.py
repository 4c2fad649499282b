"""A rep's one-to-one email to a lead: composed with the organization's merge
fields, recorded, then delivered exactly once through the email channel.

Rules enforced here:

- only a member who may work leads sends, and a sales rep only to their own
  leads (NotYourLead: a 404 in the views); never to a lead that is
  do-not-email, suppressed, discarded or merged away;
- the subject and body are the rep's text with merge fields, validated like a
  template (nurture.rendering); merged lead data is hostile: the HTML part is
  the rendered text escaped as a whole, never marked safe;
- the ledger row (DirectEmail, unique Message-ID and thread token) and its
  EMAIL_SENT activity are written in one transaction (which also stops the
  lead's first-touch SLA clock, as a logged call does); the send task is
  enqueued once it commits;
- delivery claims the row (queued/deferred → sending, one conditional UPDATE),
  so a duplicate or redelivered task finds nothing to send; "handed over" is
  committed right before the final dot (the channel's on_handed): a worker
  killed before it leaves a row that is sent again (same Message-ID), one killed
  after it an "unconfirmed" row that is never resent automatically;
- an SMTP outage defers the row (deferred, next_attempt_at after nurture's
  backoff) for NURTURE_RETRY_FOR_SECONDS, then it fails: never dropped. The
  nurture dispatcher's pass (beat, every 15 s) re-enqueues due and lost rows.
- The From is the rep's name from the organization's sender address, the
  Reply-To the thread's plus-address (direct_sender, reply_address).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.html import linebreaks

from accounts.models import Membership, Organization, Role
from accounts.permissions import Perm
from leadflow.core.mail import header_text
from leadflow.core.tenancy import enqueue_on_commit
from leads.models import ActivityKind, Lead
from leads.services.activities import activity_record_batch
from nurture import channels
from nurture.channels.email import new_message_id
from nurture.models import DirectEmail, DirectEmailStatus, InboundMailbox, Suppression
from nurture.rendering import merge_context, render_parts, validate_template
from nurture.services.common import (
    NurtureError,
    from_address,
    hold_reason,
    org_settings,
    sender_problems,
)
from nurture.services.sends import due_retry, retry_backoff, retry_window, stuck_sending
from pipeline.models import Assignment

logger = logging.getLogger(__name__)

MAX_BODY = 20_000
EXCERPT = 1000  # characters of the text kept on the timeline activity
SWEEP_LIMIT = 1000
RETRYABLE = (DirectEmailStatus.QUEUED, DirectEmailStatus.DEFERRED)


class DirectEmailError(NurtureError):
    """The email cannot be sent (content, recipient or permission)."""


class NotYourLead(DirectEmailError):
    """A sales rep wrote to a lead that is not theirs (a 404 in the views)."""


@dataclass(frozen=True)
class DirectDraft:
    subject: str
    text: str
    html: str


# --- composing -----------------------------------------------------------------------


def direct_sender(*, sender: Membership, organization: Organization) -> tuple[str, str]:
    """The one From of a rep's email: (display name, address). The name is the
    rep's with the organization's ("Ann Rep (Acme)"); the address the
    organization's sender (NurtureSettings.from_email, else the default)."""
    from email.utils import parseaddr

    cfg = org_settings(organization.pk)
    address = parseaddr(from_address(nurture_settings=cfg))[1]
    person = header_text(sender.user.display_name) or sender.user.email
    org_name = header_text(cfg.from_name or organization.name)
    name = f"{person} ({org_name})" if org_name else person
    return name[:200], address


def reply_address(*, mailbox: InboundMailbox, thread_token: str = "") -> str:
    """The organization's inbound address, plus-addressed for one thread."""
    plus = f"+{thread_token}" if thread_token else ""
    return f"{mailbox.address_name}{plus}@{settings.INBOUND_MAIL_DOMAIN}"


def direct_render(
    *, lead: Lead, organization: Organization, subject: str, body: str
) -> DirectDraft:
    """The rep's subject and body with the lead's merge fields. Raises
    TemplateInvalid for an unknown merge field or broken syntax. The HTML part
    is the merged text, escaped as a whole (lead data can never form markup)."""
    subject, body = (subject or "").strip(), (body or "").strip()
    if not body:
        raise DirectEmailError("Write a message.")
    if len(body) > MAX_BODY:
        raise DirectEmailError(f"The message is longer than {MAX_BODY:,} characters.")
    validate_template(subject, "", body)
    context = merge_context(lead=lead, organization=organization)
    rendered = render_parts(subject=subject, body_html="", body_text=body, context=context)
    # linebreaks() escapes the merged text before adding <p>/<br>; its result is
    # kept as a plain str (never marked safe): pages escape it again to show it.
    html = str.__str__(linebreaks(rendered.text, autoescape=True))
    return DirectDraft(subject=header_text(rendered.subject, 300), text=rendered.text, html=html)


def _check_recipient(lead: Lead, actor: Membership) -> None:
    if not actor.has_perm(Perm.WORK_LEADS):
        raise DirectEmailError("Your role cannot email leads.")
    if actor.organization_id != lead.organization_id or (
        actor.role == Role.SALES_REP and lead.owner_id != actor.pk
    ):
        raise NotYourLead("This lead is not assigned to you.")
    if not lead.is_active:
        raise DirectEmailError("This lead was discarded or merged away.")
    if not lead.email:
        raise DirectEmailError("This lead has no email address.")
    if lead.do_not_email or Suppression.objects.filter(email=lead.email).exists():
        raise DirectEmailError("This lead asked not to be emailed (or the address bounced).")


def mailbox_get(*, organization_id: int) -> InboundMailbox:
    """The organization's inbound mailbox, created on first use."""
    mailbox = InboundMailbox.objects.filter(organization_id=organization_id).first()
    if mailbox is not None:
        return mailbox
    with transaction.atomic():
        mailbox, _ = InboundMailbox.objects.get_or_create(
            organization_id=organization_id,
            defaults={
                "key": secrets.token_urlsafe(24),
                "secret": "whsec_" + secrets.token_urlsafe(32),
                "address_name": f"reply-{secrets.token_hex(5)}",
                "rotated_at": timezone.now(),
            },
        )
    return mailbox


def direct_email_send(*, lead: Lead, actor: Membership, subject: str, body: str) -> DirectEmail:
    """Record a rep's email to a lead and queue it: the ledger row and its
    EMAIL_SENT activity in one transaction, the send task on commit."""
    organization = Organization.objects.get(pk=lead.organization_id)
    with transaction.atomic():
        # Fresh owner, consent and suppression, read under a lock.
        locked = Lead.objects.select_for_update(of=("self",)).select_related("company")
        lead = locked.get(pk=lead.pk)
        _check_recipient(lead, actor)
        problems = sender_problems(org_settings(organization.pk), marketing=False)
        if problems:
            # A rep's email goes out only from the organization's verified address.
            raise NurtureError(" ".join(problems))
        draft = direct_render(lead=lead, organization=organization, subject=subject, body=body)
        name, address = direct_sender(sender=actor, organization=organization)
        token = secrets.token_hex(12)
        now = timezone.now()
        email = DirectEmail.objects.create(
            organization_id=organization.pk,
            lead=lead,
            sender=actor,
            to_email=lead.email,
            from_name=name,
            from_email=address,
            reply_to=reply_address(
                mailbox=mailbox_get(organization_id=organization.pk), thread_token=token
            ),
            subject_template=subject.strip(),
            body_template=body.strip(),
            subject=draft.subject,
            text=draft.text,
            html=draft.html,
            message_id=new_message_id(organization_id=organization.pk, from_email=address),
            thread_token=token,
            queued_at=now,
            next_attempt_at=now,
            enqueued_at=now,
        )
        _record_sent(email, now)
        # Writing to the lead is a touch: it stops the first-touch SLA clock, as a call does.
        Assignment.objects.filter(
            lead_id=lead.pk, is_current=True, first_touched_at__isnull=True
        ).update(first_touched_at=now)
        _enqueue(email)
    return email


def _record_sent(email: DirectEmail, now: datetime) -> None:
    properties = {
        "thread": email.thread_token,
        "direct_email_id": email.pk,
        "message_id": email.message_id,
        "subject": email.subject,
        "to": email.to_email,
        "from": email.from_name,
        "sent_by": email.sender_id,
        "excerpt": email.text[:EXCERPT],
    }
    item = {
        "lead": {"id": email.lead_id},
        "kind": ActivityKind.EMAIL_SENT,
        "occurred_at": now,
        "properties": properties,
        "external_id": f"direct:{email.thread_token}",
    }
    activity_record_batch(organization_id=email.organization_id, items=[item], source="email")


def _enqueue(email: DirectEmail) -> None:
    from nurture.tasks import send_direct_email

    enqueue_on_commit(
        send_direct_email, organization_id=email.organization_id, direct_email_id=email.pk
    )


# --- delivering: claim, hand over, settle ------------------------------------------------


def _finish(email: DirectEmail, status: str, error: str = "") -> str:
    DirectEmail.objects.filter(pk=email.pk).update(
        status=status, error=error[:2000], next_attempt_at=None
    )
    return status


def _defer(email: DirectEmail, error: str, now: datetime) -> str:
    """A transient failure: deferred until the backoff is over, failed once the
    retry window (counted from queued_at) has passed."""
    if now - email.queued_at >= retry_window():
        return _finish(email, DirectEmailStatus.FAILED, f"Gave up after {email.attempts}: {error}")
    DirectEmail.objects.filter(pk=email.pk).update(
        status=DirectEmailStatus.DEFERRED,
        error=error[:2000],
        next_attempt_at=now + retry_backoff(email.attempts),
        handed_at=None,
    )
    return DirectEmailStatus.DEFERRED


def _claim(direct_email_id: int, now: datetime) -> DirectEmail | None:
    """queued/deferred → sending in one conditional UPDATE: of two deliveries of
    the same row (a redelivered task, a second worker) exactly one gets it."""
    claimed = DirectEmail.objects.filter(pk=direct_email_id, status__in=RETRYABLE).update(
        status=DirectEmailStatus.SENDING,
        attempts=F("attempts") + 1,
        last_attempt_at=now,
        handed_at=None,
    )
    if not claimed:
        return None
    return DirectEmail.objects.select_related("lead").get(pk=direct_email_id)


def direct_email_deliver(*, direct_email_id: int) -> str:
    """Deliver one queued or deferred email; returns its new status, or
    "skipped" when another delivery has it or it is done. Call it outside any
    transaction (as the task does): the claim and the hand-off marker must be
    committed when the SMTP conversation starts."""
    now = timezone.now()
    email = _claim(direct_email_id, now)
    if email is None:
        return "skipped"
    lead = email.lead
    if lead.do_not_email or Suppression.objects.filter(email=email.to_email).exists():
        return _finish(email, DirectEmailStatus.FAILED, "Not sent: the lead opted out meanwhile.")
    cfg = org_settings(email.organization_id)
    problems = sender_problems(cfg, marketing=False)
    if problems:  # the address changed after the email was queued: wait for it
        return _defer(email, hold_reason(problems), now)
    email.sender_settings = cfg  # the channel signs with the organization's DKIM key
    channel = channels.get("email")

    def handed() -> None:
        # Its own committed statement: a worker that dies from here leaves the evidence.
        DirectEmail.objects.filter(pk=email.pk).update(handed_at=timezone.now())

    try:
        result = channel.deliver(
            email, on_handed=handed, from_name=email.from_name, reply_to=email.reply_to
        )
    except Exception as exc:
        verdict = channel.classify(exc)
        if verdict is None:
            raise
        if verdict.failure == "transient":
            return _defer(email, str(exc), now)
        return _finish(email, DirectEmailStatus.FAILED, str(exc))
    if not result.confirmed:
        return _finish(email, DirectEmailStatus.UNCONFIRMED, result.detail)
    DirectEmail.objects.filter(pk=email.pk).update(
        status=DirectEmailStatus.SENT, sent_at=timezone.now(), error="", next_attempt_at=None
    )
    return DirectEmailStatus.SENT


# --- the sweep (the nurture dispatcher's pass) --------------------------------------------


def _stuck(now: datetime) -> Q:
    return stuck_sending(now, sending=DirectEmailStatus.SENDING)


def _due(now: datetime) -> Q:
    return due_retry(now, waiting=Q(status__in=RETRYABLE))


def direct_has_due(*, now: datetime) -> bool:
    return DirectEmail.objects.filter(_due(now) | _stuck(now)).exists()


def direct_requeue_stale(*, organization_id: int, now: datetime | None = None) -> int:
    """Settle rows a dead worker left sending (not handed over → deferred, due
    now; handed over → unconfirmed) and enqueue the due ones (a deferral's
    backoff is over, or the task was lost). Returns how many were enqueued."""
    now = now or timezone.now()
    DirectEmail.objects.filter(_stuck(now), handed_at__isnull=True).update(
        status=DirectEmailStatus.DEFERRED, next_attempt_at=now
    )
    DirectEmail.objects.filter(_stuck(now), handed_at__isnull=False).update(
        status=DirectEmailStatus.UNCONFIRMED,
        error="The worker stopped after handing the email over: probably delivered.",
        next_attempt_at=None,
    )
    ids = list(
        DirectEmail.objects.filter(_due(now))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    if ids:
        from nurture.tasks import send_direct_email

        with transaction.atomic():
            DirectEmail.objects.filter(pk__in=ids).update(enqueued_at=now)
            for pk in ids:
                enqueue_on_commit(
                    send_direct_email, organization_id=organization_id, direct_email_id=pk
                )
    return len(ids)
