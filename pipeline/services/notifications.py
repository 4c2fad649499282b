"""In-app notices and their emails (SLA breaches, reassignments)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from pipeline.models import Notification


def notification_emails_send(*, notification_ids: list[int]) -> int:
    """Email each notice to its recipient at most once.

    Each notice is claimed (emailed_at set, committed) before the SMTP call, so a
    retried task skips the ones already sent; this runs in autocommit on purpose."""
    sent = 0
    notices = Notification.objects.filter(pk__in=notification_ids, emailed_at__isnull=True)
    for notice in notices.select_related("recipient__user", "lead").order_by("pk"):
        claimed = Notification.objects.filter(pk=notice.pk, emailed_at__isnull=True).update(
            emailed_at=timezone.now()
        )
        user = notice.recipient.user
        if not claimed or not notice.recipient.is_active or not user.email:
            continue
        send_mail(
            subject=f"[LeadFlow] {notice.message[:120]}",
            message=f"{notice.message}\n\nOpen your queue in LeadFlow to act on it.\n",
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[user.email],
        )
        sent += 1
    return sent


def notifications_mark_read(*, recipient_id: int, notification_ids: list[int] | None = None) -> int:
    """Mark a member's notices (all, or the given ones) as read."""
    unread = Notification.objects.filter(recipient_id=recipient_id, read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(pk__in=notification_ids)
    return unread.update(read_at=timezone.now())
