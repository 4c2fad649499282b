"""Duplicate-candidate tasks: refresh a batch's pairs; rebuild a tenant's.

A capture of one lead (a form post, an API create) doesn't publish a task of
its own: its id joins the organization's pending ids, and one drain refreshes
them all (leadflow.core.coalesce); bigger batches publish theirs as before.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from leadflow.core.coalesce import Coalesced
from leadflow.core.tenancy import TenantTask, enqueue_on_commit
from leads.services import duplicates

log = logging.getLogger(__name__)

__all__ = [
    "drain_duplicates",
    "duplicates_after_ingest",
    "rebuild_duplicates",
    "refresh_duplicates",
    "sweep_duplicates",
    "sweep_duplicates_all",
]


PENDING = Coalesced(
    "duplicates", drain_task="leads.drain_duplicates", direct_task="leads.refresh_duplicates"
)
COALESCED_MAX = 20  # ids of one write that join the pending ones rather than sending a task


def duplicates_after_ingest(organization_id: int, lead_ids: list[int]) -> None:
    """leadflow.core.hooks.post_ingest: the batch's pairs are refreshed in the
    background once it commits (capture never waits on the comparison)."""
    if len(lead_ids) <= COALESCED_MAX:
        PENDING.request_on_commit(organization_id, lead_ids)
    else:
        enqueue_on_commit(
            refresh_duplicates, organization_id=organization_id, lead_ids=list(lead_ids)
        )


DRAIN_BATCH = 5000  # ids per refresh message


@shared_task(
    base=TenantTask,
    name="leads.drain_duplicates",
    autoretry_for=(RedisError, BrokerError),
    time_limit=600,
)
def drain_duplicates(*, organization_id: int) -> int:
    """Hand the organization's pending ids (PENDING) to refresh tasks, 5,000 a
    message: once taken, they live in a task message (acks_late, retried) as a
    batch's ids do, so a worker that dies mid-refresh loses none. Ids whose
    message could not be sent go back for the retry."""
    ids = PENDING.take(organization_id)
    for start in range(0, len(ids), DRAIN_BATCH):
        chunk = ids[start : start + DRAIN_BATCH]
        try:
            refresh_duplicates.apply_async(
                kwargs={"organization_id": organization_id, "lead_ids": chunk}
            )
        except BrokerError:
            PENDING.put_back(organization_id, ids[start:])
            raise
    return len(ids)


@shared_task(
    base=TenantTask,
    name="leads.refresh_duplicates",
    autoretry_for=(OperationalError, InterfaceError),
    time_limit=600,
)
def refresh_duplicates(*, organization_id: int, lead_ids: list[int]) -> int:
    return duplicates.duplicates_refresh(organization_id=organization_id, lead_ids=lead_ids)


@shared_task(
    base=TenantTask,
    name="leads.rebuild_duplicates",
    autoretry_for=(OperationalError, InterfaceError),
    time_limit=3600,
)
def rebuild_duplicates(*, organization_id: int) -> int:
    return duplicates.duplicates_rebuild(organization_id=organization_id)


@shared_task(
    base=TenantTask,
    name="leads.sweep_duplicates",
    autoretry_for=(OperationalError, InterfaceError),
    time_limit=600,
)
def sweep_duplicates(*, organization_id: int) -> int:
    """Leads whose refresh was lost: pending ids whose drain message went
    missing (when Redis answers), and new leads without keys."""
    try:
        drained = drain_duplicates(organization_id=organization_id)
    except (RedisError, BrokerError):
        log.warning("Pending duplicate ids of %s not drained", organization_id, exc_info=True)
        drained = 0
    return drained + duplicates.duplicates_sweep(organization_id=organization_id)


@shared_task(name="leads.sweep_duplicates_all", acks_late=True, ignore_result=True)
def sweep_duplicates_all() -> int:
    """Periodic (beat): one sweep per organization, so a lead whose refresh task
    was lost still gets its keys and pairs."""
    from accounts.models import Organization

    return sweep_duplicates.fan_out(Organization.objects.values_list("pk", flat=True), expires=590)
