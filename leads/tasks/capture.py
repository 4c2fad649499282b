"""Capture tasks: process one accepted submission; sweep the ones the broker lost."""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task
from django.core.cache import cache
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from leadflow.core.tenancy import TenantTask
from leads.services import capture

__all__ = [
    "process_submission",
    "process_submissions",
    "sweep_organization_submissions",
    "sweep_unprocessed_submissions",
]

log = logging.getLogger(__name__)

# One sweep pass per organization at a time: beat starts a pass only when none
# holds this lease; a pass renews it for each slice and drops it when done. A
# lost pass (its task on a killed worker, or dropped by a restarted Redis) lets
# it expire, and the next beat starts again: short, so that recovery stays
# within a minute. A pass outliving it is harmless (processing is claimed).
SWEEP_LEASE_SECONDS = 45


def _lease_key(organization_id: int) -> str:
    return f"leads:capture-sweep:{organization_id}"


def _cache_call(method: str, *args, default=True):
    try:
        return getattr(cache, method)(*args)
    except Exception:  # an unreachable cache must not stop the recovery: sweep anyway
        log.warning("Cache unavailable for the capture sweep lease", exc_info=True)
        return default


@shared_task(
    base=TenantTask,
    name="leads.process_submission",
    autoretry_for=(OperationalError, InterfaceError),
)
def process_submission(*, organization_id: int, submission_id: int) -> str | None:
    submission = capture.submission_process(submission_id=submission_id)
    return submission.outcome if submission else None


@shared_task(
    base=TenantTask,
    name="leads.process_submissions",
    autoretry_for=(OperationalError, InterfaceError),
)
def process_submissions(*, organization_id: int, submission_ids: list[int]) -> int:
    """Process a chunk of swept submissions, each claimed in its own transaction
    (a redelivered or retried chunk skips the ones already done)."""
    return capture.submissions_process(submission_ids=submission_ids)


@shared_task(base=TenantTask, name="leads.sweep_organization_submissions")
def sweep_organization_submissions(
    *, organization_id: int, after_id: int = 0, received_before: str | None = None
) -> int:
    """Re-enqueue one slice of an organization's accepted-but-unprocessed
    submissions (received before `received_before`, the cutoff the beat chose)
    in chunks, then queue the next slice behind them, until none are left: a
    backlog drains as fast as the workers process it, and organizations take
    turns in the queue."""
    before = (
        datetime.fromisoformat(received_before)
        if received_before
        else timezone.now() - capture.SWEEP_AFTER
    )
    ids = capture.lost_submissions(before=before, after_id=after_id)
    for start in range(0, len(ids), capture.SWEEP_CHUNK):
        process_submissions.apply_async(
            kwargs={
                "organization_id": organization_id,
                "submission_ids": ids[start : start + capture.SWEEP_CHUNK],
            }
        )
    if len(ids) == capture.SWEEP_BATCH:
        _cache_call("set", _lease_key(organization_id), True, SWEEP_LEASE_SECONDS)
        sweep_organization_submissions.apply_async(
            kwargs={
                "organization_id": organization_id,
                "after_id": ids[-1],
                "received_before": before.isoformat(),
            }
        )
    else:
        _cache_call("delete", _lease_key(organization_id))
    return len(ids)


@shared_task(name="leads.sweep_unprocessed_submissions", acks_late=True, ignore_result=True)
def sweep_unprocessed_submissions() -> int:
    """Periodic (beat): start a sweep pass for each organization that has lost
    submissions and none running, so a submission accepted while the broker was
    down, or held by a killed worker, is still processed."""
    started = 0
    for organization_id, before in capture.organizations_with_lost_submissions().items():
        if not _cache_call("add", _lease_key(organization_id), True, SWEEP_LEASE_SECONDS):
            continue  # a pass is still working through this organization's backlog
        sweep_organization_submissions.apply_async(
            kwargs={"organization_id": organization_id, "received_before": before.isoformat()}
        )
        started += 1
    return started
