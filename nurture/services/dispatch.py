"""Dispatching due sequence steps, each sent exactly once, over any channel.

The dispatcher knows nothing of the medium: a step's channel (nurture.channels)
composes its ledger row; delivering it is the send side's (sends.py). Rules
enforced here:

- dispatch writes one ledger row (EmailMessage) per (enrollment, step) — a
  unique key — *before* any delivery, advances the enrollment in the same transaction, and
  enqueues the sends only once that transaction commits;
- an enrollment waits on the step it was dispatched for (awaiting_send) until
  that email is sent or fails for good; sending, retries and the at-most-once
  hand-off are in sends.py;
- consent is checked twice: when a step falls due (no email consent,
  do-not-email or suppression → the enrollment exits) and again when the send
  task reads its batch, moments before its SMTP calls (an unsubscribe in
  between wins);
- a per-organization throttle (messages per minute, NurtureSettings) bounds
  how much one tenant can put in the shared send queue per minute, so a tenant
  with 100,000 due emails cannot starve the others;
- nothing is dispatched while the organization's sender is not ready
  (a verified from-address and a postal address, nurture.services.sender):
  the due steps wait and go out once it is;
- transient SMTP errors are retried for hours (sends.py); the dispatcher's
  pass re-enqueues messages whose retry is due or whose task was lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Organization
from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from nurture import channels
from nurture.channels.email import new_message
from nurture.models import (
    EmailMessage,
    EmailTemplate,
    Enrollment,
    EnrollmentStatus,
    ExitCondition,
    SequenceStep,
)
from nurture.services.common import (
    NurtureError,
    from_address,
    org_settings,
    sender_problems,
    suppressed_emails,
)
from nurture.services.direct import direct_has_due, direct_requeue_stale
from nurture.services.enrollments import sequence_zone, step_due
from nurture.services.sends import enqueue_sends, has_stale_messages, requeue_stale

logger = logging.getLogger(__name__)

DISPATCH_CHUNK = 500  # enrollments per transaction: sends start while the rest is dispatched
MAX_ATTEMPTS = 5


def _lock(qs):
    # PostgreSQL: concurrent dispatchers/senders take disjoint rows instead of
    # waiting; SQLite's IMMEDIATE transactions serialize writers anyway.
    if connection.vendor == "postgresql":
        return qs.select_for_update(skip_locked=True, of=("self",))
    return qs


def _sendable(lead: Lead, suppressed: set[str]) -> str | None:
    """None when the lead may be emailed, else the exit reason."""
    if lead.do_not_email or lead.email in suppressed:
        return ExitCondition.UNSUBSCRIBED
    if not lead.email or not lead.email_opt_in or not lead.is_active:
        return "no_consent"
    return None


def sent_last_minute(*, now: datetime) -> int:
    return EmailMessage.objects.filter(queued_at__gt=now - timedelta(minutes=1)).count()


def _dispatch_chunk(
    *, organization: Organization, cfg, now: datetime, limit: int, compose: Callable
) -> tuple[int, int]:
    """One transaction: lock up to `limit` due enrollments, write their messages,
    advance them. Returns (enrollments handled, messages queued)."""
    with transaction.atomic():
        due = _lock(
            Enrollment.objects.filter(
                status=EnrollmentStatus.ACTIVE,
                awaiting_send=False,
                next_send_at__lte=now,
                sequence__is_active=True,
            ).order_by("next_send_at", "pk")
        ).select_related("sequence", "lead", "lead__company", "lead__owner__user")[:limit]
        due = list(due)
        if not due:
            return 0, 0
        steps = {
            (s.sequence_id, s.position): s
            for s in SequenceStep.objects.filter(
                sequence_id__in={e.sequence_id for e in due}
            ).select_related("template")
        }
        suppressed = suppressed_emails(e.lead.email for e in due)
        zones: dict[int, Any] = {}
        messages: list[EmailMessage] = []
        exits: dict[str, list[int]] = {}
        for enrollment in due:
            sequence, lead = enrollment.sequence, enrollment.lead
            step = steps.get((sequence.pk, enrollment.current_step))
            reason = _sendable(lead, suppressed)
            if reason:
                exits.setdefault(reason, []).append(enrollment.pk)
                continue
            if step is None:
                _finish(enrollment, now)
                continue
            messages.append(compose(enrollment, step))
            following = steps.get((sequence.pk, step.position + 1))
            enrollment.current_step = step.position + 1
            # It waits on this step until the email is sent (sends.py releases it).
            enrollment.awaiting_send = True
            if following is None:
                enrollment.next_send_at = None  # completes once the email is sent
            else:
                zone = zones.setdefault(sequence.pk, sequence_zone(sequence, organization))
                enrollment.next_send_at = step_due(
                    sequence=sequence, step=following, after=now, zone=zone
                )
        EmailMessage.objects.bulk_create(messages, batch_size=1000, ignore_conflicts=True)
        # ignore_conflicts returns no keys: read back the rows this pass inserted.
        inserted = dict(
            EmailMessage.objects.filter(
                message_id__in=[m.message_id for m in messages]
            ).values_list("pk", "enrollment_id")
        )
        waiting = set(inserted.values())
        exited = {pk for ids in exits.values() for pk in ids}
        for enrollment in due:
            if enrollment.awaiting_send and enrollment.pk not in waiting:
                # Its (enrollment, step) email existed already: nothing to wait for.
                enrollment.awaiting_send = False
                if enrollment.next_send_at is None:
                    _finish(enrollment, now)
        _advance([e for e in due if e.pk not in exited])
        for reason, ids in exits.items():
            Enrollment.objects.filter(pk__in=ids).update(
                status=EnrollmentStatus.EXITED, exited_at=now, exit_reason=reason, next_send_at=None
            )
        ids = list(inserted)
        enqueue_sends(organization_id=organization.pk, message_ids=sorted(ids))
    return len(due), len(ids)


_ADVANCED = (
    "current_step",
    "next_send_at",
    "status",
    "exited_at",
    "exit_reason",
    "awaiting_send",
)


def _advance(enrollments: list[Enrollment]) -> None:
    """Save the enrollments' new step/next send time: one UPDATE per distinct
    set of values (a chunk mostly moves to the same step at the same time),
    instead of bulk_update's CASE over every row, which cost more than composing."""
    groups: dict[tuple, list[int]] = {}
    for enrollment in enrollments:
        values = tuple(getattr(enrollment, field) for field in _ADVANCED)
        groups.setdefault(values, []).append(enrollment.pk)
    for values, ids in groups.items():
        Enrollment.objects.filter(pk__in=ids).update(**dict(zip(_ADVANCED, values, strict=True)))


def _finish(enrollment: Enrollment, now: datetime) -> None:
    enrollment.status = EnrollmentStatus.COMPLETED
    enrollment.exited_at = now
    enrollment.exit_reason = "completed"
    enrollment.next_send_at = None


def _composer(organization: Organization, cfg, now: datetime) -> Callable:
    def compose(enrollment: Enrollment, step: SequenceStep) -> EmailMessage:
        send = channels.Send(
            organization=organization, settings=cfg, now=now, enrollment=enrollment
        )
        return channels.for_step(step).compose(send, enrollment.lead, step)

    return compose


def dispatch_due(
    *,
    organization_id: int,
    now: datetime | None = None,
    limit: int | None = None,
    requeue: bool = True,
) -> int:
    """Queue the due steps of this organization's active enrollments, up to the
    organization's per-minute throttle (and `limit`); returns messages queued.
    Also re-enqueues messages still queued after NURTURE_REQUEUE_AFTER_SECONDS
    (their task was lost, e.g. with a killed worker)."""
    now = now or timezone.now()
    organization = Organization.objects.get(pk=organization_id)
    cfg = org_settings(organization_id)
    if requeue:
        requeue_stale(organization_id=organization_id, now=now)
        direct_requeue_stale(organization_id=organization_id, now=now)
    if sender_problems(cfg):
        # Nothing is composed from an unverified sender: the due steps wait (the
        # outbox and Sender identity say why) and go out once it is fixed.
        return 0
    budget = max(0, cfg.throttle_per_minute - sent_last_minute(now=now))
    if limit is not None:
        budget = min(budget, limit)
    compose = _composer(organization, cfg, now)
    queued = 0
    while budget > 0:
        handled, count = _dispatch_chunk(
            organization=organization,
            cfg=cfg,
            now=now,
            limit=min(budget, DISPATCH_CHUNK),
            compose=compose,
        )
        queued += count
        budget -= count
        if handled < DISPATCH_CHUNK:
            break
    return queued


def has_due_work(*, now: datetime | None = None) -> bool:
    """Whether the active organization has due enrollments, or messages (or
    reps' direct emails) due for a retry or left behind by a lost task or a
    dead worker."""
    now = now or timezone.now()
    due = Enrollment.objects.filter(
        status=EnrollmentStatus.ACTIVE,
        awaiting_send=False,
        next_send_at__lte=now,
        sequence__is_active=True,
    )
    return due.exists() or has_stale_messages(now=now) or direct_has_due(now=now)


def organizations_with_due_work(*, now: datetime | None = None) -> list[int]:
    """Organizations with due work (the beat fan-out). Each is checked inside its
    own scope — two indexed EXISTS queries per organization — so the tenant
    wall holds even here."""
    now = now or timezone.now()
    found = []
    for organization_id in Organization.objects.order_by("pk").values_list("pk", flat=True):
        with tenant_scope(organization_id):
            if has_due_work(now=now):
                found.append(organization_id)
    return found


# --- test sends (email only: a template sent to an address) ------------------------------


def template_test_send(
    *, template: EmailTemplate, to_email: str, lead: Lead | None = None
) -> EmailMessage:
    """Send a template to yourself (merge fields from `lead`, or blank): a real
    send through the same path, marked as a test and never tied to a sequence."""
    from leads.scrub import normalize_email

    check = normalize_email(to_email or "")
    if not check.valid:
        raise NurtureError(f"{to_email!r} is not a valid email address: {check.error}")
    assert check.email is not None  # a valid check carries its normalised address
    organization = Organization.objects.get(pk=template.organization_id)
    cfg = org_settings(template.organization_id)
    message = new_message(
        organization=organization,
        cfg=cfg,
        lead=lead,
        template=template,
        sender=from_address(nurture_settings=cfg),
        to_email=check.email,
        now=timezone.now(),
        is_test=True,
    )
    message.subject = f"[Test] {message.subject}"[:300]
    with transaction.atomic():
        message.save()
        enqueue_sends(organization_id=organization.pk, message_ids=[message.pk])
    return message
