"""Enrollments: start (by hand, by list/recycle/form trigger), pause, resume,
stop, and exits when a lead converts, unsubscribes or bounces.

Rules enforced here:

- consent first: only leads with an email address, email opt-in, no
  do-not-email and no suppression are ever enrolled;
- one live (active or paused) enrollment per lead and sequence (a conditional
  unique constraint); a trigger never enrolls a lead twice into the same
  sequence, a person may re-enroll one by hand;
- set-based: enrolling thousands of leads is a handful of queries and a bulk
  INSERT; exits are one UPDATE.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organization
from leads.models import Lead
from nurture.models import (
    LIVE_ENROLLMENT,
    Enrollment,
    EnrollmentStatus,
    ExitCondition,
    Sequence,
    SequenceStep,
)
from nurture.services.common import EnrollmentError, sendable_leads

# Consent overrides a sequence's settings: these always end an enrollment.
# A lead who answers a rep's email is in a conversation with a person: no
# sequence keeps mailing them, whatever its own exit conditions say.
ALWAYS_EXIT = frozenset({ExitCondition.UNSUBSCRIBED, ExitCondition.BOUNCED, ExitCondition.REPLIED})


# --- send windows ------------------------------------------------------------------


def sequence_zone(sequence: Sequence, organization: Organization | None = None) -> ZoneInfo:
    name = sequence.timezone
    if not name:
        org = organization or Organization.objects.only("timezone").get(pk=sequence.organization_id)
        name = org.timezone
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _hhmm(value: str) -> time:
    hours, minutes = str(value).split(":")
    return time(int(hours), int(minutes))


def window_start(when: datetime, window: Mapping[str, Any] | None, zone: ZoneInfo) -> datetime:
    """The first moment at or after `when` inside the send window (weekdays and
    hours in the sequence's time zone); `when` itself when there is no window."""
    if not window:
        return when
    days = set(window.get("days") or range(7))
    start, end = _hhmm(window.get("start", "00:00")), _hhmm(window.get("end", "23:59"))
    local = when.astimezone(zone)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        opens = datetime.combine(day, start, tzinfo=zone)
        closes = datetime.combine(day, end, tzinfo=zone)
        if local < opens:
            return opens
        if local < closes:
            return when
    return when  # an empty window can't be met; validation prevents it


def step_due(
    *, sequence: Sequence, step: SequenceStep, after: datetime, zone: ZoneInfo
) -> datetime:
    delay = timedelta(days=step.delay_days, hours=step.delay_hours)
    return window_start(after + delay, sequence.send_window, zone)


# --- starting -------------------------------------------------------------------------


def enrollment_start(
    *,
    sequence: Sequence,
    lead_ids: Iterable[int],
    source: str = "manual",
    allow_reenroll: bool = True,
    now: datetime | None = None,
) -> dict[str, int]:
    """Enroll leads of this organization; returns counts: enrolled, already (a
    live enrollment exists, or any for triggers), no_consent, not_found."""
    now = now or timezone.now()
    wanted = {int(i) for i in lead_ids}
    counts = {"enrolled": 0, "already": 0, "no_consent": 0, "not_found": 0}
    if not wanted:
        return counts
    first = SequenceStep.objects.filter(sequence=sequence).order_by("position").first()
    if first is None:
        raise EnrollmentError(f"{sequence.name} has no steps yet: add one before enrolling.")
    with transaction.atomic():
        found = Lead.objects.filter(
            pk__in=wanted, discarded_at__isnull=True, merged_into__isnull=True
        )
        found_ids = set(found.values_list("pk", flat=True))
        ok_ids = set(sendable_leads(found).values_list("pk", flat=True))
        existing = Enrollment.objects.filter(sequence=sequence, lead_id__in=ok_ids)
        if allow_reenroll:
            existing = existing.filter(status__in=LIVE_ENROLLMENT)
        taken = set(existing.values_list("lead_id", flat=True))
        new_ids = sorted(ok_ids - taken)
        due = step_due(sequence=sequence, step=first, after=now, zone=sequence_zone(sequence))
        Enrollment.objects.bulk_create(
            [
                Enrollment(
                    organization_id=sequence.organization_id,
                    sequence=sequence,
                    lead_id=lead_id,
                    current_step=first.position,
                    next_send_at=due,
                    source=source[:40],
                    enrolled_at=now,
                )
                for lead_id in new_ids
            ],
            batch_size=1000,
            ignore_conflicts=True,  # a concurrent trigger enrolled one first
        )
    counts.update(
        enrolled=len(new_ids),
        already=len(taken),
        no_consent=len(found_ids - ok_ids),
        not_found=len(wanted - found_ids),
    )
    return counts


def trigger_matches(trigger: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return all(str(trigger.get(k)) == str(v) for k, v in wanted.items())


def enroll_for_trigger(
    *, organization_id: int, trigger: Mapping[str, Any], lead_ids: Iterable[int]
) -> int:
    """Enroll leads in every active sequence with a matching entry trigger
    (e.g. {"type": "joins_list", "list_id": 3}); never twice into one sequence."""
    ids = list(lead_ids)
    if not ids:
        return 0
    total = 0
    for sequence in Sequence.objects.filter(is_active=True):
        if any(trigger_matches(t, trigger) for t in sequence.entry_triggers or []):
            try:
                counts = enrollment_start(
                    sequence=sequence,
                    lead_ids=ids,
                    source=str(trigger.get("type", "trigger")),
                    allow_reenroll=False,
                )
            except EnrollmentError:
                continue  # an active sequence without steps has nothing to send
            total += counts["enrolled"]
    return total


# --- pause / resume / stop / exit ------------------------------------------------------


def _locked(enrollment: Enrollment) -> Enrollment:
    return Enrollment.objects.select_for_update().get(pk=enrollment.pk)


def enrollment_pause(*, enrollment: Enrollment, actor: Membership | None = None) -> Enrollment:
    with transaction.atomic():
        row = _locked(enrollment)
        if row.status != EnrollmentStatus.ACTIVE:
            raise EnrollmentError("Only an active enrollment can be paused.")
        row.status = EnrollmentStatus.PAUSED
        row.save(update_fields=["status"])
    return row


def enrollment_resume(*, enrollment: Enrollment, actor: Membership | None = None) -> Enrollment:
    """A resumed enrollment sends its next step at once if it fell due while paused."""
    with transaction.atomic():
        row = _locked(enrollment)
        if row.status != EnrollmentStatus.PAUSED:
            raise EnrollmentError("Only a paused enrollment can be resumed.")
        if not sendable_leads().filter(pk=row.lead_id).exists():
            raise EnrollmentError("This lead can no longer be emailed (no consent or suppressed).")
        row.status = EnrollmentStatus.ACTIVE
        row.save(update_fields=["status"])
    return row


def enrollment_stop(*, enrollment: Enrollment, actor: Membership | None = None) -> Enrollment:
    with transaction.atomic():
        row = _locked(enrollment)
        if row.status not in LIVE_ENROLLMENT:
            raise EnrollmentError("This enrollment has already ended.")
        row.status = EnrollmentStatus.STOPPED
        row.exited_at = timezone.now()
        row.exit_reason = "stopped"
        row.next_send_at = None
        row.save(update_fields=["status", "exited_at", "exit_reason", "next_send_at"])
    return row


def enrollments_exit(*, organization_id: int, lead_ids: Iterable[int], reason: str) -> int:
    """End the live enrollments of these leads in sequences that exit on `reason`
    (unsubscribed and bounced end every enrollment); one UPDATE."""
    ids = sorted(set(lead_ids))
    if not ids:
        return 0
    live = Enrollment.objects.filter(lead_id__in=ids, status__in=LIVE_ENROLLMENT)
    if reason not in ALWAYS_EXIT:
        sequences = [
            pk
            for pk, exit_on in Sequence.objects.values_list("pk", "exit_on")
            if reason in (exit_on or [])
        ]
        if not sequences:
            return 0
        live = live.filter(sequence_id__in=sequences)
    return live.update(
        status=EnrollmentStatus.EXITED,
        exited_at=timezone.now(),
        exit_reason=reason,
        next_send_at=None,
    )
