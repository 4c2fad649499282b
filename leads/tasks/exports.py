"""The background lead export: thin, idempotent (see services.exports)."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from leadflow.core.tenancy import TenantTask
from leads.models import ExportJob
from leads.services import exports as services

__all__ = ["export_job_run"]


@shared_task(bind=True, base=TenantTask, name="leads.export_job_run", time_limit=3600)
def export_job_run(self, *, organization_id: int, job_id: int) -> str:
    try:
        return services.export_job_run(job_id=job_id)
    except ExportJob.DoesNotExist:
        return "missing"
    except (OperationalError, InterfaceError) as exc:
        if self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=min(600, 5 * 2**self.request.retries)) from exc
        services.export_job_fail(job_id=job_id, message=f"Database unavailable: {exc}")
        raise
    except Exception as exc:
        services.export_job_fail(job_id=job_id, message=str(exc) or type(exc).__name__)
        raise
