"""Retention: a daily beat trigger fans out one idempotent purge per organization
that set a retention."""

from __future__ import annotations

from celery import shared_task

from leadflow.core.tenancy import TenantTask
from privacy import services
from privacy.models import PrivacySettings


@shared_task(base=TenantTask, name="privacy.retention_purge", time_limit=1800)
def retention_purge(*, organization_id: int) -> dict[str, int]:
    return services.retention_purge(organization_id=organization_id)


@shared_task(name="privacy.retention_purge_all", acks_late=True, ignore_result=True)
def retention_purge_all() -> int:
    # Organization ids only, across tenants, through the base manager (the trigger).
    ids = (
        PrivacySettings._base_manager.filter(retention_days__isnull=False)
        .order_by("organization_id")
        .values_list("organization_id", flat=True)
    )
    return retention_purge.fan_out(ids, expires=3600)
