"""Nurture background work: the per-minute dispatcher (fanned out per
organization), batched sends, and the periodic dynamic-list refresh."""

from __future__ import annotations

from collections import Counter

from celery import shared_task
from django.db import InterfaceError, OperationalError

from accounts.models import Organization
from leadflow.core.mail import retry_or_record
from leadflow.core.tenancy import TenantTask, tenant_scope
from nurture import services
from nurture.models import ListKind, NurtureList
from nurture.services import sender
from nurture.services.direct import direct_email_deliver
from nurture.services.sends import messages_send

__all__ = [
    "dispatch_all",
    "dispatch_organization",
    "refresh_dynamic_lists_all",
    "refresh_organization_lists",
    "send_direct_email",
    "send_messages",
    "send_sender_verification",
]

DISPATCH_PER_TASK = 2000


@shared_task(name="nurture.dispatch_all", acks_late=True, ignore_result=True)
def dispatch_all() -> int:
    """Beat, every 15 s: one dispatch task per organization with due work, so
    tenants are dispatched side by side, each within its own throttle (one that
    waits past the next beat expires: that beat dispatched it again)."""
    return dispatch_organization.fan_out(services.organizations_with_due_work(), expires=14)


@shared_task(
    base=TenantTask,
    name="nurture.dispatch_organization",
    autoretry_for=(OperationalError, InterfaceError),
)
def dispatch_organization(*, organization_id: int, limit: int | None = None) -> int:
    """Dispatch up to DISPATCH_PER_TASK messages, then hand the rest to a fresh
    task: short tasks stay far from the time limit and let the sends (and other
    organizations' dispatches) in between."""
    per_task = min(limit or DISPATCH_PER_TASK, DISPATCH_PER_TASK)
    queued = services.dispatch_due(organization_id=organization_id, limit=per_task)
    rest = None if limit is None else limit - queued
    if queued == per_task and (rest is None or rest > 0):
        dispatch_organization.apply_async(
            kwargs={"organization_id": organization_id, "limit": rest}
        )
    return queued


@shared_task(
    base=TenantTask,
    name="nurture.send_messages",
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=8,
)
def send_messages(*, organization_id: int, message_ids: list[int]) -> dict[str, int]:
    """Send a batch of queued messages over one SMTP connection. A transient
    failure leaves a message queued with its next attempt time: the
    dispatcher's pass (beat, every 15 s) enqueues it again when that comes,
    so a retry never depends on a task held in the broker for hours."""
    return dict(Counter(messages_send(message_ids=message_ids).values()))


@shared_task(
    base=TenantTask,
    name="nurture.send_direct_email",
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=8,
)
def send_direct_email(*, organization_id: int, direct_email_id: int) -> str:
    """Deliver a rep's email to a lead (exactly once: the row is claimed). A
    transient failure defers it; the dispatcher's pass enqueues it again."""
    return direct_email_deliver(direct_email_id=direct_email_id)


@shared_task(base=TenantTask, name="nurture.refresh_organization_lists")
def refresh_organization_lists(*, organization_id: int) -> int:
    lists = list(NurtureList.objects.filter(kind=ListKind.DYNAMIC))
    for nurture_list in lists:
        services.list_refresh(nurture_list=nurture_list)
    return len(lists)


@shared_task(name="nurture.refresh_dynamic_lists_all", acks_late=True, ignore_result=True)
def refresh_dynamic_lists_all() -> int:
    """Beat: re-evaluate every dynamic list (time-based conditions such as
    "opened an email in the last 30 days" change without any lead changing)."""
    ids = []
    for organization_id in Organization.objects.order_by("pk").values_list("pk", flat=True):
        with tenant_scope(organization_id):
            if NurtureList.objects.filter(kind=ListKind.DYNAMIC).exists():
                ids.append(organization_id)
    return refresh_organization_lists.fan_out(ids)


@shared_task(base=TenantTask, bind=True, name="nurture.send_sender_verification")
def send_sender_verification(self, *, organization_id: int) -> bool:
    """Email the from-address its confirmation link (Sender identity)."""

    try:
        return sender.sender_verification_send(organization_id=organization_id)
    except Exception as exc:
        retry_or_record(
            self,
            exc,
            lambda error: sender.sender_verification_failed(
                organization_id=organization_id, error=error
            ),
        )
        return False
