"""Scoring background work: tenant rescore jobs and the nightly decay pass."""

from celery import shared_task
from django.db import DatabaseError, InterfaceError, OperationalError

from accounts.models import Organization
from leadflow.core.tenancy import TenantTask, tenant_scope
from scoring import rescoring, versions


def _task(name: str, **options):
    """A shared task named explicitly, as the other apps name theirs.

    Until 2026-12 these tasks ran under the names Celery derived from the
    module ("scoring.tasks.<function>"). A message queued under an old name
    by the previous release (during a rolling deploy, or waiting in a long
    queue) would be rejected as an unregistered task, so the old name stays
    registered as an alias to the same function, routed to the same queue
    (leadflow.core.queues.LEGACY_ROUTES). Drop the aliases one release later.
    """

    def register(fn):
        shared_task(name=f"scoring.tasks.{fn.__name__}", **options)(fn)
        return shared_task(name=name, **options)(fn)

    return register


@_task(
    "scoring.run_rescore_job",
    base=TenantTask,
    autoretry_for=(DatabaseError,),
    time_limit=3 * 3600,
    soft_time_limit=3 * 3600 - 60,
)
def run_rescore_job(*, organization_id: int, job_id: int) -> None:
    rescoring.rescore_job_run(job_id=job_id)


@_task("scoring.nightly_decay")
def nightly_decay() -> int:
    """Fan out one rescore per organization: engagement points decay with age."""
    count = 0
    for organization_id in Organization.objects.values_list("pk", flat=True):
        with tenant_scope(organization_id):
            rescoring.rescore_job_start(organization_id=organization_id, reason="Nightly decay")
        count += 1
    return count


@_task(
    "scoring.run_learning_job",
    base=TenantTask,
    autoretry_for=(DatabaseError,),
    max_retries=3,
    acks_late=True,
    time_limit=3600,
    soft_time_limit=3600 - 60,
)
def run_learning_job(*, organization_id: int, job_id: int) -> None:
    versions.learning_job_run(job_id=job_id)


@_task("scoring.retrain_due")
def retrain_due() -> int:
    """Fan out one retrain_organization per organization (a drift check reads the
    tenant's leads: no single beat task should do it for every tenant)."""
    return retrain_organization.fan_out(
        Organization.objects.values_list("pk", flat=True), expires=6 * 3600
    )


@shared_task(
    name="scoring.retrain_organization",
    base=TenantTask,
    autoretry_for=(DatabaseError,),
    max_retries=3,
    time_limit=1800,
    soft_time_limit=1800 - 60,
)
def retrain_organization(*, organization_id: int) -> bool:
    """Organizations using learned rules get a fresh suggestion when the last
    learning is older than SCORING_RETRAIN_DAYS (drafts only), and their admins
    an email when those rules have drifted (once per episode). Idempotent: the
    open drift notice and the learning job's age are the markers."""
    versions.drift_notice_check(organization_id=organization_id)
    return versions.learning_job_start_if_due(organization_id=organization_id) is not None


@_task(
    "scoring.send_drift_notice",
    base=TenantTask,
    bind=True,
    autoretry_for=(OperationalError, InterfaceError),
)
def send_drift_notice(self, *, organization_id: int, notice_id: int) -> int:
    from leadflow.core.mail import retry_or_record

    try:
        return versions.drift_notice_email(notice_id=notice_id)
    except versions.DriftEmailDeferred as deferred:
        retry_or_record(
            self,
            deferred.__cause__ or deferred,
            lambda error: versions.drift_notice_email_failed(notice_id=notice_id, error=error),
        )
        return 0
