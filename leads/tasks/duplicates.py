"""Duplicate-candidate tasks: refresh a batch's pairs; rebuild a tenant's.

A capture of one lead (a form post, an API create) doesn't publish a task of
its own: its id joins the organization's pending ids, and one drain refreshes
them all (leadflow.core.coalesce); bigger batches publish theirs as before.
"""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError
from redis.exceptions import RedisError

from leadflow.core.coalesce import Coalesced
from leadflow.core.tenancy import TenantTask, enqueue_on_commit
from leads.services import duplicates

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


@shared_task(
    base=TenantTask,
    name="leads.drain_duplicates",
    autoretry_for=(OperationalError, InterfaceError, RedisError),
    time_limit=600,
)
def drain_duplicates(*, organization_id: int) -> int:
    """Refresh the organization's pending ids (PENDING). Ids it took go back
    when the database failed, for the retry (any other error would fail again:
    they are dropped, and the sweep refreshes new leads that have no keys)."""
    ids = PENDING.take(organization_id)
    if not ids:
        return 0
    try:
        duplicates.duplicates_refresh(organization_id=organization_id, lead_ids=ids)
    except (OperationalError, InterfaceError):
        PENDING.put_back(organization_id, ids)
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
    missing, and new leads without keys."""
    return drain_duplicates(organization_id=organization_id) + duplicates.duplicates_sweep(
        organization_id=organization_id
    )


@shared_task(name="leads.sweep_duplicates_all", acks_late=True, ignore_result=True)
def sweep_duplicates_all() -> int:
    """Periodic (beat): one sweep per organization, so a lead whose refresh task
    was lost still gets its keys and pairs."""
    from accounts.models import Organization

    return sweep_duplicates.fan_out(Organization.objects.values_list("pk", flat=True), expires=590)
