"""Reports background work: the weekly KPI digest (beat hourly, one job per
organization; each job sends only on Monday morning in the org's timezone)."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from accounts.models import Organization
from leadflow.tenancy import TenantTask
from reports.digest import digests_send
from reports.rollups import refresh_all_rollups, refresh_rollups  # noqa: F401 (registers the tasks)

__all__ = ["send_org_digests", "send_weekly_digests"]


@shared_task(
    base=TenantTask,
    name="reports.send_org_digests",
    autoretry_for=(OperationalError, InterfaceError),
)
def send_org_digests(*, organization_id: int) -> int:
    return digests_send(organization_id=organization_id)


@shared_task(name="reports.send_weekly_digests", acks_late=True, ignore_result=True)
def send_weekly_digests() -> int:
    """Beat: one digest job per organization (each decides if it is Monday morning there)."""
    ids = list(Organization.objects.values_list("pk", flat=True))
    for organization_id in ids:
        send_org_digests.apply_async(kwargs={"organization_id": organization_id}, expires=3000)
    return len(ids)
