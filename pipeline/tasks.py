"""Pipeline background work: the SLA sweep (beat, fanned out per organization),
notification emails and their digests. Thin: ids in, one service call."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from accounts.models import Organization
from leadflow.core.tenancy import TenantTask

# The notification tasks live beside the service that enqueues them; importing
# them here registers them with the worker (autodiscovery reads pipeline.tasks).
from pipeline.notification_tasks import (
    notification_digests,
    notification_digests_org,
    send_notification_emails,
)
from pipeline.services.followups import follow_ups_remind
from pipeline.services.sla import sla_check
from pipeline.services.webhooks import webhook_deliver

__all__ = [
    "deliver_webhook",
    "follow_ups_remind_org",
    "follow_ups_remind_sweep",
    "notification_digests",
    "notification_digests_org",
    "send_notification_emails",
    "sla_check_org",
    "sla_sweep",
    "webhook_dispatch",
]


@shared_task(
    base=TenantTask,
    name="pipeline.sla_check_org",
    autoretry_for=(OperationalError, InterfaceError),
)
def sla_check_org(*, organization_id: int) -> dict:
    return sla_check(organization_id=organization_id)


@shared_task(name="pipeline.sla_sweep", acks_late=True, ignore_result=True)
def sla_sweep() -> int:
    """Beat: one SLA check per organization."""
    return sla_check_org.fan_out(Organization.objects.values_list("pk", flat=True), expires=55)


@shared_task(
    base=TenantTask,
    name="pipeline.follow_ups_remind_org",
    autoretry_for=(OperationalError, InterfaceError),
)
def follow_ups_remind_org(*, organization_id: int) -> int:
    return follow_ups_remind(organization_id=organization_id)


@shared_task(name="pipeline.follow_ups_remind_sweep", acks_late=True, ignore_result=True)
def follow_ups_remind_sweep() -> int:
    """Beat: one "task due" pass per organization."""
    return follow_ups_remind_org.fan_out(
        Organization.objects.values_list("pk", flat=True), expires=55
    )


# --- Webhooks ----------------------------------------------------------------------


@shared_task(
    base=TenantTask,
    name="pipeline.webhook_dispatch",
    autoretry_for=(OperationalError, InterfaceError),
)
def webhook_dispatch(*, organization_id: int, delivery_ids: list[int]) -> int:
    """Fan out: one send task per delivery, so a slow endpoint holds up only its own."""
    for delivery_id in delivery_ids:
        deliver_webhook.apply_async(
            kwargs={"organization_id": organization_id, "delivery_id": delivery_id}
        )
    return len(delivery_ids)


@shared_task(
    base=TenantTask,
    name="pipeline.deliver_webhook",
    autoretry_for=(OperationalError, InterfaceError),
)
def deliver_webhook(*, organization_id: int, delivery_id: int) -> str:
    """One send; a retryable failure schedules the next one with its backoff.

    A fresh message rather than self.retry(): the delivery row, not Celery's
    retry count, holds the attempts (a redelivery starts a new budget)."""
    attempt = webhook_deliver(delivery_id=delivery_id)
    if attempt.retry_in is not None:
        deliver_webhook.apply_async(
            kwargs={"organization_id": organization_id, "delivery_id": delivery_id},
            countdown=attempt.retry_in,
        )
    return attempt.status
