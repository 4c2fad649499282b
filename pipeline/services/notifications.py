"""In-app notices and their emails (SLA breaches, reassignments)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from leadflow.core.errors import LeadflowError
from leadflow.core.mail import describe, header_text, is_transient
from pipeline.models import Notification

logger = logging.getLogger(__name__)


class NoticeEmailDeferred(LeadflowError):
    """A notice's email hit a transient mail failure; the task retries it."""

    def __init__(self, *, notification_id: int) -> None:
        super().__init__(f"Email of notice {notification_id} deferred")
        self.notification_id = notification_id


def notification_emails_send(*, notification_ids: list[int]) -> int:
    """Email each notice to its recipient at most once.

    Each notice is claimed (emailed_at set, committed) before the SMTP call, so a
    retried task skips the ones already sent; this runs in autocommit on purpose.
    A transient mail failure releases the claim and raises NoticeEmailDeferred (the
    task retries); a permanent one is recorded on the notice (the team page lists
    it) and the other notices still go out."""
    sent = 0
    notices = Notification.objects.filter(pk__in=notification_ids, emailed_at__isnull=True)
    for notice in notices.select_related("recipient__user", "lead").order_by("pk"):
        claimed = Notification.objects.filter(pk=notice.pk, emailed_at__isnull=True).update(
            emailed_at=timezone.now()
        )
        user = notice.recipient.user
        if not claimed or not notice.recipient.is_active or not user.email:
            continue
        try:
            send_mail(
                # The message names the lead: lead data never breaks the header.
                subject=header_text(f"[LeadFlow] {notice.message}", 130),
                message=f"{notice.message}\n\nOpen your queue in LeadFlow to act on it.\n",
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[user.email],
            )
        except Exception as exc:
            logger.exception("Email of notice %s failed", notice.pk)
            if is_transient(exc):
                Notification.objects.filter(pk=notice.pk).update(emailed_at=None)
                raise NoticeEmailDeferred(notification_id=notice.pk) from exc
            # Permanent: it would fail again. Keep the claim, say why, go on.
            Notification.objects.filter(pk=notice.pk).update(email_error=describe(exc)[:300])
            continue
        sent += 1
    return sent


def notification_emails_failed(*, notification_ids: list[int], error: str) -> int:
    """The mail server stayed unavailable through every retry: the batch's notices not
    yet emailed are marked failed with why (the team page lists them)."""
    return Notification.objects.filter(pk__in=notification_ids, emailed_at__isnull=True).update(
        emailed_at=timezone.now(), email_error=error[:300]
    )


def notifications_mark_read(*, recipient_id: int, notification_ids: list[int] | None = None) -> int:
    """Mark a member's notices (all, or the given ones) as read."""
    unread = Notification.objects.filter(recipient_id=recipient_id, read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(pk__in=notification_ids)
    return unread.update(read_at=timezone.now())
