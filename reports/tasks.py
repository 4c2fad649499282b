"""Reports background work: the weekly KPI digest (beat hourly, one job per
organization; each job sends only on Monday morning in the org's timezone) and
the dashboard rollup refreshes (reports.services.rollups; beat every few
minutes, one job per organization, a full rebuild nightly)."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from accounts.models import Organization
from leadflow.core.mail import retry_or_record
from leadflow.core.tenancy import TenantTask
from reports.digest import DigestDeferred, digest_failure_record, digests_send
from reports.services.rollups import rollup_refresh

__all__ = [
    "refresh_all_rollups",
    "refresh_rollups",
    "send_org_digests",
    "send_weekly_digests",
]


@shared_task(
    base=TenantTask,
    bind=True,
    name="reports.send_org_digests",
    autoretry_for=(OperationalError, InterfaceError),
)
def send_org_digests(self, *, organization_id: int, force: bool = False) -> int:
    try:
        return digests_send(organization_id=organization_id, force=force)
    except DigestDeferred as deferred:
        retry_or_record(
            self,
            deferred.__cause__ or deferred,
            lambda error, who=deferred.membership_id, week=deferred.week_start: (
                digest_failure_record(
                    organization_id=organization_id,
                    membership_id=who,
                    week_start=week,
                    error=error,
                )
            ),
        )
        return 0


@shared_task(name="reports.send_weekly_digests", acks_late=True, ignore_result=True)
def send_weekly_digests() -> int:
    """Beat: one digest job per organization (each decides if it is Monday morning there)."""
    ids = Organization.objects.values_list("pk", flat=True)
    return send_org_digests.fan_out(ids, expires=3000)


@shared_task(
    base=TenantTask,
    name="reports.refresh_rollups",
    autoretry_for=(OperationalError, InterfaceError),
    soft_time_limit=600,
    time_limit=660,
)
def refresh_rollups(*, organization_id: int, full: bool = False) -> dict[str, int]:
    return rollup_refresh(organization_id=organization_id, full=full)


@shared_task(name="reports.refresh_all_rollups", acks_late=True, ignore_result=True)
def refresh_all_rollups(full: bool = False) -> int:
    """Beat: one refresh job per organization (every few minutes; full=True nightly)."""
    ids = Organization.objects.values_list("pk", flat=True)
    return refresh_rollups.fan_out(ids, expires=600, full=full)
