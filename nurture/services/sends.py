"""Sending queued nurture messages: at most once, retried for hours, never lost.

The medium is the message's channel's (nurture.channels: deliver, classify a
failure); the ledger, claims, retries, the hand-off marker and what happens to
the enrollment are decided here, the same for every channel. The email
channel's words below (SMTP, the final dot) are its hand-off and failures.

A message's life (EmailMessage.status):

    queued ──claim──▶ sending ──250──▶ sent
      ▲                 │ 4xx / refused / timeout: queued again, next_attempt_at
      └─────────────────┤   after a backoff (NURTURE_RETRY_BASE/MAX_SECONDS) for
                        │   NURTURE_RETRY_FOR_SECONDS (48 h) from queued_at, then failed
                        ├─ 5xx for the recipient (550/551/553): bounced
                        ├─ other 5xx, or the retry window over: failed (reason kept)
                        └─ worker died after handed_at was committed: unconfirmed

- Claim: a send task moves its batch's still-queued rows to sending in one short
  transaction (counting the attempt). A duplicate or redelivered task, or a
  second worker, finds them no longer queued and skips them.
- Hand-off: "handed to SMTP" (handed_at) is committed in its own statement right
  before the DATA command's final dot (nurture.channels.email.smtp_transaction). So after a
  worker dies, a row still "sending" either has no handed_at — the server never
  got a complete message, it is sent again — or has one: the dot was about to go
  or went, the server probably accepted it. That row becomes "unconfirmed" and is
  NOT resent automatically (an email goes out at most once); the outbox shows it.
  What remains: a worker killed in the few microseconds between that commit and
  the write of the final dot leaves an unconfirmed message that was never
  delivered (see the README section "Nurture email delivery").
- Retries are driven by the database, not by countdown tasks in the broker:
  the dispatcher (beat, every 15 s) re-enqueues messages whose next_attempt_at
  has come, and messages whose task was lost (enqueued or claimed longer than
  NURTURE_REQUEUE_AFTER_SECONDS ago, which must exceed the task time limit).
- An enrollment waits on its step while the step's email is unsent
  (awaiting_send): sent (or unconfirmed) → its next step is scheduled, shifted by
  how late the email went, or it completes after its last step; failed → it
  exits with reason "send_failed" (never "completed"); bounced → the address is
  suppressed and the lead leaves all its sequences (reason "bounced");
  recipient unsubscribed meanwhile → it exits with "unsubscribed".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from email.utils import formataddr, parseaddr
from typing import TYPE_CHECKING, TypedDict

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from accounts.models import Membership
from nurture import channels
from nurture.models import (
    LIVE_ENROLLMENT,
    EmailMessage,
    Enrollment,
    EnrollmentStatus,
    ExitCondition,
    MessageStatus,
    NurtureSettings,
    Suppression,
    SuppressionReason,
)
from nurture.services.common import (
    HOLD_PREFIX,
    HOLD_RETRY,
    hold_reason,
    is_verified,
    org_settings,
    sender_problems,
)
from nurture.services.enrollments import enrollments_exit

SEND_FAILED = "send_failed"  # Enrollment.exit_reason when its email failed for good
SWEEP_LIMIT = 5000  # messages re-enqueued per organization per dispatcher pass
SEND_BATCH = 100  # messages per send task: one claim, one SMTP connection, one broker round trip


def requeue_after() -> timedelta:
    return timedelta(seconds=settings.NURTURE_REQUEUE_AFTER_SECONDS)


def retry_window() -> timedelta:
    return timedelta(seconds=settings.NURTURE_RETRY_FOR_SECONDS)


def retry_backoff(attempts: int) -> timedelta:
    """The wait after the n-th failed attempt: base, 2×base, 4×base… capped."""
    base = settings.NURTURE_RETRY_BASE_SECONDS
    return timedelta(
        seconds=min(base * 2 ** min(max(attempts - 1, 0), 20), settings.NURTURE_RETRY_MAX_SECONDS)
    )


def _batches(ids: list[int], size: int = SEND_BATCH) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def enqueue_sends(*, organization_id: int, message_ids: list[int]) -> None:
    """Enqueue send tasks for these messages once the transaction commits."""
    if not message_ids:
        return
    from nurture.tasks import send_messages

    def send() -> None:
        for batch in _batches(message_ids):
            send_messages.apply_async(
                kwargs={"organization_id": organization_id, "message_ids": batch}
            )

    transaction.on_commit(send)


# --- the hot path: plain SQL keyed by the organization ---------------------------------

_TABLE = EmailMessage._meta.db_table
_HANDED = f"UPDATE {_TABLE} SET handed_at = %s WHERE id = %s AND organization_id = %s"
_MARK_SENT = (
    f"UPDATE {_TABLE} SET status = %s, sent_at = %s, error = '', next_attempt_at = NULL"
    " WHERE id = %s AND organization_id = %s"
)


_ENROLLMENTS = Enrollment._meta.db_table
# PostgreSQL: the send log row and its enrollment in one statement (one round
# trip, one commit): the same rule as _release(), written in SQL.
_MARK_SENT_AND_RELEASE = f"""
WITH sent AS ({_MARK_SENT} RETURNING enrollment_id)
UPDATE {_ENROLLMENTS} AS e SET
  awaiting_send = false,
  status = CASE WHEN e.next_send_at IS NULL THEN %s ELSE e.status END,
  exited_at = CASE WHEN e.next_send_at IS NULL THEN %s ELSE e.exited_at END,
  exit_reason = CASE WHEN e.next_send_at IS NULL THEN 'completed' ELSE e.exit_reason END,
  next_send_at = e.next_send_at + %s
FROM sent
WHERE e.id = sent.enrollment_id AND e.organization_id = %s AND e.awaiting_send
  AND e.status = ANY(%s)
"""


class _Claim(TypedDict):
    suppressed: bool  # Exists(): the recipient is on the suppression list


if TYPE_CHECKING:  # django-stubs' annotated-model type; a dev dependency only
    from django_stubs_ext import WithAnnotations

    # A claimed row with its suppressed annotation.
    ClaimedMessage = WithAnnotations[EmailMessage, _Claim]


def _execute(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _claim(message_ids: list[int]) -> list[ClaimedMessage]:
    """Queued → sending for the batch's rows that are still queued, counting
    the attempt; one short transaction. PostgreSQL: rows another delivery holds
    are skipped, not waited for; SQLite's IMMEDIATE transactions serialize."""
    now = timezone.now()
    suppressed = Suppression.objects.filter(email=OuterRef("to_email"))
    rows = EmailMessage.objects.filter(pk__in=message_ids, status=MessageStatus.QUEUED)
    if connection.vendor == "postgresql":
        rows = rows.select_for_update(skip_locked=True, of=("self",))
    with transaction.atomic():
        batch = list(
            rows.select_related("lead", "enrollment")
            .defer("enrollment__source")
            .annotate(suppressed=Exists(suppressed))
            .order_by("pk")
        )
        EmailMessage.objects.filter(pk__in=[m.pk for m in batch]).update(
            status=MessageStatus.SENDING,
            attempts=F("attempts") + 1,
            last_attempt_at=now,
            handed_at=None,
        )
    for message in batch:
        message.attempts += 1
        message.status, message.last_attempt_at = MessageStatus.SENDING, now
    return batch


def _mark_handed(message: EmailMessage) -> None:
    # Its own committed statement (the send runs outside any transaction), so a
    # worker that dies from here on leaves the evidence behind.
    _execute(_HANDED, [timezone.now(), message.pk, message.organization_id])


def _mark_sent(message: EmailMessage, now: datetime) -> None:
    """Sent, and its enrollment released, in one commit."""
    sent = [MessageStatus.SENT.value, now, message.pk, message.organization_id]
    if connection.vendor == "postgresql":
        late = max(now - message.queued_at, timedelta(0))
        live = [str(status) for status in LIVE_ENROLLMENT]
        release = [EnrollmentStatus.COMPLETED.value, now, late, message.organization_id, live]
        _execute(_MARK_SENT_AND_RELEASE, sent + release)
        return
    with transaction.atomic():
        _execute(_MARK_SENT, sent)
        _release(message, now=now)


def _finish(message: EmailMessage, status: str, error: str) -> None:
    EmailMessage.objects.filter(pk=message.pk).update(
        status=status, error=error[:2000], next_attempt_at=None
    )
    message.status, message.error = status, error[:2000]


def _defer(message: EmailMessage, error: str, now: datetime) -> str:
    """A transient failure: queued again after the backoff, or failed once the
    retry window (counted from queued_at) is over."""
    window = retry_window()
    if now - message.queued_at >= window:
        hours = window.total_seconds() / 3600
        _finish(
            message,
            MessageStatus.FAILED,
            f"Gave up after {message.attempts} attempts over {hours:g} h: {error}",
        )
        _exit_enrollment(message, SEND_FAILED)
        return "failed"
    EmailMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.QUEUED,
        error=error[:2000],
        next_attempt_at=now + retry_backoff(message.attempts),
        handed_at=None,
    )
    return "retry"


def _release(message: EmailMessage, *, now: datetime) -> None:
    """The enrollment stops waiting on this message's step: its next step falls
    due as late as the email went out, or it completes after its last step."""
    enrollment = message.enrollment if message.enrollment_id else None
    if enrollment is None or not enrollment.awaiting_send:
        return
    live = Enrollment.objects.filter(
        pk=enrollment.pk, awaiting_send=True, status__in=LIVE_ENROLLMENT
    )
    if enrollment.next_send_at is None:
        live.update(
            awaiting_send=False,
            status=EnrollmentStatus.COMPLETED,
            exited_at=now,
            exit_reason="completed",
        )
    else:
        late = max(now - message.queued_at, timedelta(0))
        live.update(awaiting_send=False, next_send_at=enrollment.next_send_at + late)


def _exit_enrollment(message: EmailMessage, reason: str) -> None:
    if message.enrollment_id:
        Enrollment.objects.filter(pk=message.enrollment_id, status__in=LIVE_ENROLLMENT).update(
            status=EnrollmentStatus.EXITED,
            exited_at=timezone.now(),
            exit_reason=reason,
            next_send_at=None,
            awaiting_send=False,
        )


def _bounce(message: EmailMessage, error: str) -> None:
    """Hard bounce: the address is suppressed and the lead leaves its sequences."""
    _finish(message, MessageStatus.BOUNCED, error)
    Suppression.objects.get_or_create(
        email=message.to_email,
        defaults={
            "organization_id": message.organization_id,
            "reason": SuppressionReason.HARD_BOUNCE,
            "detail": error[:500],
        },
    )
    if message.lead_id:
        enrollments_exit(
            organization_id=message.organization_id,
            lead_ids=[message.lead_id],
            reason=ExitCondition.BOUNCED,
        )
    _exit_enrollment(message, ExitCondition.BOUNCED)  # a test send has no lead


def _hold(message: EmailMessage, reason: str, now: datetime) -> None:
    """The sender is not ready: queued again with the reason, looked at again
    later, never failed for it (the attempt is not counted)."""
    EmailMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.QUEUED,
        error=reason[:2000],
        next_attempt_at=now + HOLD_RETRY,
        attempts=F("attempts") - 1,
        handed_at=None,
    )


def _from_verified(message: EmailMessage, cfg: NurtureSettings) -> None:
    """A message queued before the from-address changed goes out from the
    verified one (with its own from-name)."""
    name, address = parseaddr(message.from_email)
    if address.lower() != cfg.from_email.lower():
        message.from_email = formataddr((name, cfg.from_email))
        EmailMessage.objects.filter(pk=message.pk).update(from_email=message.from_email)


def held_release(*, organization_id: int) -> int:
    """The sender is ready: held messages are due now, and enqueued on commit."""
    now = timezone.now()
    ids = list(
        EmailMessage.objects.filter(
            status=MessageStatus.QUEUED, error__startswith=HOLD_PREFIX
        ).values_list("pk", flat=True)
    )
    if ids:
        EmailMessage.objects.filter(pk__in=ids).update(next_attempt_at=now, enqueued_at=now)
        enqueue_sends(organization_id=organization_id, message_ids=ids)
    return len(ids)


def _sender_settings(organization_id: int) -> NurtureSettings:
    from nurture.services.sender import dkim_key_ensure

    cfg = org_settings(organization_id)
    if is_verified(cfg) and not cfg.dkim_private_key:
        cfg = dkim_key_ensure(organization_id=organization_id)
    return cfg


def _send_one(
    message: ClaimedMessage, *, unreachable: str | None, cfg: NurtureSettings
) -> tuple[str, str | None]:
    """Send one claimed message. Returns (outcome, why the server is
    unreachable): once a connection could not be made, the rest of the batch is
    deferred without waiting for more timeouts."""
    now = timezone.now()
    if not message.is_test and (
        message.suppressed or (message.lead is not None and message.lead.do_not_email)
    ):
        _finish(
            message, MessageStatus.FAILED, "Not sent: the recipient unsubscribed or is suppressed."
        )
        _exit_enrollment(message, ExitCondition.UNSUBSCRIBED)
        return "failed", unreachable
    if not message.is_test:
        # A rep's one-to-one email (no enrollment) needs the verified sender;
        # marketing email the postal address too.
        problems = sender_problems(cfg, marketing=message.enrollment_id is not None)
        if problems:
            _hold(message, hold_reason(problems), now)
            return "held", unreachable
        _from_verified(message, cfg)
    if unreachable:
        return _defer(message, unreachable, now), unreachable
    message.sender_settings = cfg  # the channel signs with its key, adds its Reply-To
    channel = channels.for_message(message)
    try:
        result = channel.deliver(message, on_handed=lambda: _mark_handed(message))
    except Exception as exc:
        verdict = channel.classify(exc)
        if verdict is None:
            raise  # not a delivery failure (the hand-off marker's own write)
        if verdict.failure == "transient":
            return _defer(message, str(exc), now), (str(exc) if verdict.unreachable else None)
        if verdict.bounced:
            _bounce(message, str(exc))
            return "bounced", None
        _finish(message, MessageStatus.FAILED, str(exc))
        _exit_enrollment(message, SEND_FAILED)
        return "failed", None
    if not result.confirmed:
        _unconfirmed(message, result.detail, now)
        return "unconfirmed", None
    _mark_sent(message, timezone.now())
    return "sent", None


UNCONFIRMED_NOTE = (
    "Handed to the mail server (final dot sent or about to be) but its answer was "
    "not recorded: probably delivered, so it is not sent again automatically."
)


def _unconfirmed(message: EmailMessage, error: str, now: datetime) -> None:
    _finish(message, MessageStatus.UNCONFIRMED, f"{UNCONFIRMED_NOTE} {error}".strip())
    _release(message, now=now)


def messages_send(*, message_ids: list[int]) -> dict[int, str]:
    """Send a batch of queued messages over the worker's open SMTP connection
    (rules: the module docstring). Returns each id's outcome: sent, skipped
    (not queued any more, or taken by another delivery), retry (queued again with its
    next_attempt_at), held (the sender is not ready: queued with the reason),
    failed, bounced or unconfirmed.

    The batch's still-queued rows (with leads, enrollments and suppressions) are
    read and claimed in one short transaction; each message is then handed over
    and marked in short transactions of its own: call it outside any
    transaction (as the send task does), so each commits at once and none is
    held open during SMTP."""
    outcomes = dict.fromkeys(message_ids, "skipped")
    unreachable = None
    batch = _claim(message_ids)
    if not batch:
        return outcomes
    cfg = _sender_settings(batch[0].organization_id)
    for message in batch:
        outcomes[message.pk], unreachable = _send_one(message, unreachable=unreachable, cfg=cfg)
    return outcomes


def message_send(*, message_id: int) -> str:
    """Send one queued message; see messages_send()."""
    return messages_send(message_ids=[message_id])[message_id]


def message_resend(*, message: EmailMessage, actor: Membership | None = None) -> EmailMessage:
    """Send an unconfirmed message again, on a person's decision (the outbox):
    the same Message-ID, so a receiver that already has it can drop the copy."""
    from nurture.services.common import NurtureError

    now = timezone.now()
    with transaction.atomic():
        resent = EmailMessage.objects.filter(
            pk=message.pk, status=MessageStatus.UNCONFIRMED
        ).update(
            status=MessageStatus.QUEUED,
            next_attempt_at=now,
            enqueued_at=now,
            handed_at=None,
            error="",
        )
        if not resent:
            raise NurtureError("Only an unconfirmed email can be sent again.")
        enqueue_sends(organization_id=message.organization_id, message_ids=[message.pk])
    message.refresh_from_db()
    return message


# --- the sweep (the dispatcher runs it every 15 s) ---------------------------------------


def due_retry(now: datetime, *, waiting: Q) -> Q:
    """A ledger row waiting to be sent (`waiting`: its statuses), due, and not
    already on the broker (or put there so long ago that its task must have
    been lost). Shared with reps' direct emails (nurture.services.direct)."""
    return (
        waiting
        & Q(next_attempt_at__lte=now)
        & (
            Q(enqueued_at__isnull=True)
            | Q(enqueued_at__lt=F("next_attempt_at"))
            | Q(enqueued_at__lt=now - requeue_after())
        )
    )


def stuck_sending(now: datetime, *, sending: str = MessageStatus.SENDING) -> Q:
    """Claimed by a worker that died (no live send outlasts the task time limit)."""
    return Q(status=sending, last_attempt_at__lt=now - requeue_after())


def _due_retry(now: datetime) -> Q:
    return due_retry(now, waiting=Q(status=MessageStatus.QUEUED))


def has_stale_messages(*, now: datetime) -> bool:
    return EmailMessage.objects.filter(_due_retry(now) | stuck_sending(now)).exists()


def requeue_stale(*, organization_id: int, now: datetime | None = None) -> int:
    """Re-enqueue this organization's messages that are due again (transient
    failure, backoff over) or whose send task was lost; settle the ones a dead
    worker left "sending": not handed over → queued again (nothing reached the
    server), handed over → unconfirmed. Returns messages enqueued."""
    now = now or timezone.now()
    # Nothing reached the server: queue them again, in one statement.
    EmailMessage.objects.filter(stuck_sending(now), handed_at__isnull=True).update(
        status=MessageStatus.QUEUED, next_attempt_at=now
    )
    handed = EmailMessage.objects.filter(stuck_sending(now), handed_at__isnull=False)
    for message in handed.select_related("enrollment")[:SWEEP_LIMIT]:
        _unconfirmed(message, "The worker stopped after the hand-off.", now)
    ids = list(
        EmailMessage.objects.filter(_due_retry(now))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    if ids:
        with transaction.atomic():
            EmailMessage.objects.filter(pk__in=ids).update(enqueued_at=now)
            enqueue_sends(organization_id=organization_id, message_ids=ids)
    return len(ids)
