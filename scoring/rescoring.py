"""Rescoring a tenant: the background job (queued, run in id-range batches with
progress) and the post_ingest hook that rescores just-captured leads."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from leadflow.core.tenancy import enqueue_on_commit
from leads.models import Lead
from leads.services.ingest import ingested_touch
from scoring import engine
from scoring.models import RescoreJob, RescoreStatus

RESCORE_BATCH = 50_000  # leads per statement of a tenant rescore (progress granularity)


def rescore_job_start(*, organization_id: int, reason: str) -> RescoreJob:
    """Queue a whole-tenant rescore; a job already waiting absorbs the new request."""
    waiting = RescoreJob.objects.filter(status=RescoreStatus.QUEUED).first()
    if waiting:
        return waiting
    job = RescoreJob.objects.create(organization_id=organization_id, reason=reason[:200])
    enqueue_on_commit("scoring.run_rescore_job", organization_id=organization_id, job_id=job.pk)
    return job


def rescore_job_run(*, job_id: int) -> RescoreJob | None:
    """Rescore the tenant in id-range batches, recording progress after each.

    Safe to run twice: a finished job is skipped; a job that died mid-way runs
    again from the start (rescoring is idempotent)."""
    with transaction.atomic():
        job = RescoreJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status == RescoreStatus.DONE:
            return job
        bounds = Lead.objects.aggregate(lo=Min("pk"), hi=Max("pk"), n=Max("pk") - Min("pk"))
        job.status = RescoreStatus.RUNNING
        job.started_at = timezone.now()
        job.total = Lead.objects.count()
        job.processed = job.crossed_up = job.crossed_down = 0
        job.save()
    config = engine.load_config(organization_id=job.organization_id)
    now = timezone.now()
    lo, hi = bounds["lo"], bounds["hi"]
    start = lo or 0
    while lo is not None and start <= hi:
        end = start + RESCORE_BATCH
        result = engine.rescore(
            organization_id=job.organization_id, id_range=(start, end), now=now, config=config
        )
        job.processed = min(job.total, job.processed + result.scored)
        job.crossed_up += len(result.crossed_up)
        job.crossed_down += len(result.crossed_down)
        job.save(update_fields=["processed", "crossed_up", "crossed_down"])
        start = end
    job.status = RescoreStatus.DONE
    job.processed = job.total
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "processed", "finished_at"])
    return job


def rescore_after_ingest(organization_id: int, lead_ids: list[int]) -> None:
    """post_ingest hook: a captured submission or new activity rescores its leads
    (a few leads with the cached configuration, an import chunk set-based)."""
    touched = ingested_touch()
    scored = (
        {i: touched.scored_at_insert[i] for i in lead_ids if i in touched.scored_at_insert}
        if touched
        else {}
    )
    rest = [i for i in lead_ids if i not in scored]
    if scored:  # new leads their INSERT scored (engine.new_lead_scores)
        rest += engine.scored_at_insert(organization_id, scored)
    if rest:
        engine.rescore_leads(organization_id=organization_id, lead_ids=rest)


def rescore_after_merge(organization_id: int, kept_id: int, dropped_id: int) -> None:
    """lead_merged hook: the kept lead now has both leads' history."""
    engine.rescore_leads(organization_id=organization_id, lead_ids=[kept_id])


def rescore_after_unmerge(
    organization_id: int, kept_id: int, dropped_id: int, changes: dict
) -> None:
    """lead_unmerged hook: each lead has its own history back."""
    engine.rescore_leads(organization_id=organization_id, lead_ids=[kept_id, dropped_id])
