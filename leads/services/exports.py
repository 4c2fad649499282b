"""Lead CSV exports: small ones stream in the request, large ones run as a job.

The rules:

- the columns are the member's choice (leads.exports); the rows are the lead
  list's, filtered the same way and limited to what the member may see;
- up to LEADS_EXPORT_SYNC_ROWS rows stream straight to the browser; more become
  an ExportJob that a worker writes to a file, with progress, then a download;
- a job run is idempotent: a done job is left alone, an interrupted one is
  written again from the start (the file is replaced, never appended to);
- every export is in the audit log as "export.created".
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.http import QueryDict
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Membership
from accounts.selectors import active_members
from leadflow.core.errors import LeadflowError
from leadflow.core.tenancy import enqueue_on_commit
from leads import exports
from leads.attributes import custom_attribute_labels
from leads.filters import LeadFilter
from leads.models import ExportJob, ExportStatus
from leads.selectors import lead_list

PROGRESS_EVERY = 2000


class ExportError(LeadflowError):
    pass


def sync_limit() -> int:
    return settings.LEADS_EXPORT_SYNC_ROWS


def export_queryset(*, membership: Membership, query: str):
    """The leads of the list filtered by `query`, as this member sees them."""
    members = list(active_members(organization=membership.organization))
    lead_filter = LeadFilter(
        QueryDict(query),
        queryset=lead_list(membership=membership).order_by("-created_at"),
        members=members,
    )
    return lead_filter.qs


def export_columns(keys: list[str]) -> list[exports.ExportColumn]:
    columns = exports.resolve_columns(keys, custom_attribute_labels())
    if not columns:
        raise ExportError("Choose at least one column.")
    return columns


def is_large(*, membership: Membership, query: str) -> bool:
    """More rows than a request should stream (counted no further than that)."""
    limit = sync_limit()
    qs = export_queryset(membership=membership, query=query)
    return qs.order_by().values("pk")[: limit + 1].count() > limit


def _audit(membership: Membership, query: str, keys: list[str], job: ExportJob | None) -> None:
    audit_record(
        organization=membership.organization,
        action="export.created",
        actor=membership,
        subject=job,
        label="Lead export" + (" (in the background)" if job else ""),
        data={"columns": keys, "filters": query, **({"job": job.pk} if job else {})},
    )


def export_stream(*, membership: Membership, query: str, keys: list[str]) -> Iterator[str]:
    """Audit a small export and return its CSV lines. The lines are produced
    lazily (the response streams them): iterate inside the tenant's scope."""
    columns = export_columns(keys)
    _audit(membership, query, [c.key for c in columns], None)
    qs = export_queryset(membership=membership, query=query)
    return _lines(qs, columns)


def _lines(qs, columns: list[exports.ExportColumn]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def take() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(exports.header(columns))
    yield take()
    for lead in qs.iterator(chunk_size=PROGRESS_EVERY):
        writer.writerow(exports.row(lead, columns))
        yield take()


@transaction.atomic
def export_job_create(*, membership: Membership, query: str, keys: list[str]) -> ExportJob:
    """Queue a large export; a worker writes it after commit."""
    columns = export_columns(keys)
    job = ExportJob.objects.create(
        organization=membership.organization,
        membership=membership,
        query=query,
        columns=[c.key for c in columns],
    )
    _audit(membership, query, job.columns, job)
    enqueue_on_commit("leads.export_job_run", organization_id=job.organization_id, job_id=job.pk)
    return job


def export_job_run(*, job_id: int) -> str:
    """Write the job's file (idempotent: see the module docstring)."""
    job = ExportJob.objects.select_related("membership__organization").get(pk=job_id)
    if job.status == ExportStatus.DONE:
        return "done"
    if job.membership is None:
        export_job_fail(job_id=job_id, message="The member who asked for it has left.")
        return "failed"
    columns = exports.resolve_columns(job.columns, custom_attribute_labels())
    qs = export_queryset(membership=job.membership, query=job.query)
    total = qs.order_by().count()
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportStatus.RUNNING, total_rows=total, processed_rows=0
    )
    with tempfile.TemporaryFile("w+b") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        done = 0
        for line in _lines(qs, columns):
            text.write(line)
            done += 1
            if done % PROGRESS_EVERY == 0:
                ExportJob.objects.filter(pk=job.pk).update(processed_rows=done - 1)
        text.flush()
        raw.seek(0)
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        job.file.save(f"leads-{stamp}-{job.pk}.csv", File(raw), save=False)
        text.detach()
    ExportJob.objects.filter(pk=job.pk).update(
        file=job.file.name,
        status=ExportStatus.DONE,
        processed_rows=max(done - 1, 0),
        total_rows=max(done - 1, 0),
        finished_at=timezone.now(),
    )
    return "done"


def export_job_fail(*, job_id: int, message: str) -> None:
    ExportJob.objects.filter(pk=job_id).exclude(status=ExportStatus.DONE).update(
        status=ExportStatus.FAILED, error_message=message[:2000], finished_at=timezone.now()
    )


def recent_export_jobs(*, membership: Membership, limit: int = 5):
    return ExportJob.objects.filter(membership=membership).order_by("-created_at")[:limit]
