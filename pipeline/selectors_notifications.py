"""Reads of a member's notifications (the bell, its panel and the list page).

Each runs a constant number of queries whatever the number of notices; all of
them filter by the recipient, so a member only ever sees their own notices (and
the tenant scope keeps them to the current organization)."""

from __future__ import annotations

from django.db.models import QuerySet

from pipeline.models import Notification

PANEL_SIZE = 8


def notifications_of(*, membership_id: int) -> QuerySet[Notification]:
    """A member's notices, newest first."""
    return Notification.objects.filter(recipient_id=membership_id).order_by("-created_at", "-pk")


def bell_state(*, membership_id: int) -> dict:
    """The unread count and the newest unread notice (for a desktop notification)."""
    unread = notifications_of(membership_id=membership_id).filter(read_at__isnull=True)
    newest = unread.only("pk", "message", "created_at").first()
    return {"unread": unread.count() if newest else 0, "newest": newest}


def recent_notifications(*, membership_id: int, limit: int = PANEL_SIZE) -> list[Notification]:
    return list(
        notifications_of(membership_id=membership_id).only(
            "pk", "message", "kind", "created_at", "read_at"
        )[:limit]
    )
