"""Capture tasks: process one accepted submission; sweep the ones the broker lost."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from leadflow.tenancy import TenantTask
from leads.services import capture

__all__ = [
    "process_submission",
    "sweep_organization_submissions",
    "sweep_unprocessed_submissions",
]


@shared_task(
    base=TenantTask,
    name="leads.process_submission",
    autoretry_for=(OperationalError, InterfaceError),
)
def process_submission(*, organization_id: int, submission_id: int) -> str | None:
    submission = capture.submission_process(submission_id=submission_id)
    return submission.outcome if submission else None


@shared_task(base=TenantTask, name="leads.sweep_organization_submissions")
def sweep_organization_submissions(*, organization_id: int) -> int:
    """Re-enqueue one organization's accepted-but-unprocessed submissions."""
    ids = capture.lost_submissions()
    for submission_id in ids:
        process_submission.apply_async(
            kwargs={"organization_id": organization_id, "submission_id": submission_id}
        )
    return len(ids)


@shared_task(name="leads.sweep_unprocessed_submissions", acks_late=True, ignore_result=True)
def sweep_unprocessed_submissions() -> int:
    """Periodic (beat): fan out one sweep per organization that has lost submissions,
    so a submission accepted while the broker was down is still processed."""
    organization_ids = capture.organizations_with_lost_submissions()
    for organization_id in organization_ids:
        sweep_organization_submissions.apply_async(kwargs={"organization_id": organization_id})
    return len(organization_ids)
