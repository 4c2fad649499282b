"""Notification emails (immediate ones, and the digests beat sends hourly). Thin:
ids in, one service call. Registered through pipeline.tasks."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from accounts.models import Organization
from leadflow.core.mail import retry_or_record
from leadflow.core.tenancy import TenantTask
from pipeline.services.notifications import (
    NoticeEmailDeferred,
    notification_digests_send,
    notification_emails_failed,
    notification_emails_requeue,
    notification_emails_send,
)


@shared_task(
    base=TenantTask,
    bind=True,
    name="pipeline.send_notification_emails",
    autoretry_for=(OperationalError, InterfaceError),
)
def send_notification_emails(self, *, organization_id: int, notification_ids: list[int]) -> int:
    try:
        return notification_emails_send(notification_ids=notification_ids)
    except NoticeEmailDeferred as deferred:
        retry_or_record(
            self,
            deferred.__cause__ or deferred,
            lambda error: notification_emails_failed(
                notification_ids=notification_ids, error=error
            ),
        )
        return 0


@shared_task(name="pipeline.notification_digests", acks_late=True, ignore_result=True)
def notification_digests() -> int:
    """Beat: one digest run per organization (each member's pending digest notices)."""
    return notification_digests_org.fan_out(Organization.objects.values_list("pk", flat=True))


@shared_task(
    base=TenantTask,
    bind=True,
    name="pipeline.notification_digests_org",
    autoretry_for=(OperationalError, InterfaceError),
)
def notification_digests_org(self, *, organization_id: int) -> int:
    """The organization's digests, and its immediate emails whose task was lost."""
    notification_emails_requeue()
    try:
        return notification_digests_send()
    except NoticeEmailDeferred as deferred:
        # Released: the retry (or the next run) sends them; never recorded as failed.
        retry_or_record(self, deferred.__cause__ or deferred, lambda error: None)
        return 0
