"""Duplicate-candidate tasks: refresh a batch's pairs; rebuild a tenant's."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from leadflow.core.tenancy import TenantTask, enqueue_on_commit
from leads.services import duplicates

__all__ = [
    "duplicates_after_ingest",
    "rebuild_duplicates",
    "refresh_duplicates",
    "sweep_duplicates",
    "sweep_duplicates_all",
]


def duplicates_after_ingest(organization_id: int, lead_ids: list[int]) -> None:
    """leadflow.core.hooks.post_ingest: the batch's pairs are refreshed in the
    background once it commits (capture never waits on the comparison)."""
    if lead_ids:
        enqueue_on_commit(
            refresh_duplicates, organization_id=organization_id, lead_ids=list(lead_ids)
        )


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
    return duplicates.duplicates_sweep(organization_id=organization_id)


@shared_task(name="leads.sweep_duplicates_all", acks_late=True, ignore_result=True)
def sweep_duplicates_all() -> int:
    """Periodic (beat): one sweep per organization, so a lead whose refresh task
    was lost still gets its keys and pairs."""
    from accounts.models import Organization

    return sweep_duplicates.fan_out(Organization.objects.values_list("pk", flat=True), expires=590)
