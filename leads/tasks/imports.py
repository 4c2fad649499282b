"""The CSV import job: thin, resumable, safe to run twice (see services.imports),
and the sweep that resumes imports whose worker died or whose task was lost."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from leadflow.core.tenancy import TenantTask
from leads.models import ImportJob
from leads.services import imports as services

__all__ = ["import_job_run", "resume_stalled_imports", "sweep_stale_imports"]

# Each run stops after this many seconds and enqueues its continuation, so a
# 100 MB file never meets the task time limit and progress stays visible.
TIME_BUDGET_SECONDS = 150


@shared_task(bind=True, base=TenantTask)
def import_job_run(self, *, organization_id: int, job_id: int) -> str:
    try:
        result = services.import_job_run(job_id=job_id, time_budget=TIME_BUDGET_SECONDS)
    except ImportJob.DoesNotExist:
        return "missing"
    except (OperationalError, InterfaceError) as exc:
        # The database went away or stayed locked: committed chunks are kept,
        # a retry carries on after them.
        if self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=min(600, 5 * 2**self.request.retries)) from exc
        services.import_job_fail(job_id=job_id, message=f"Database unavailable: {exc}")
        raise
    except Exception as exc:
        services.import_job_fail(job_id=job_id, message=str(exc) or type(exc).__name__)
        raise
    if result == services.RunResult.CONTINUE:
        self.apply_async(kwargs={"organization_id": organization_id, "job_id": job_id})
    return result


@shared_task(base=TenantTask, name="leads.resume_stalled_imports")
def resume_stalled_imports(*, organization_id: int) -> int:
    """Send a run for each of one organization's stalled imports."""
    return len(services.import_jobs_resume_stalled())


@shared_task(name="leads.sweep_stale_imports", acks_late=True, ignore_result=True)
def sweep_stale_imports() -> int:
    """Periodic (beat): fan out one resume per organization with a stalled import —
    queued but lost by the broker, or running on a worker that died."""
    return resume_stalled_imports.fan_out(services.stale_import_organizations())
