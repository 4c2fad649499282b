"""CSV import: upload, map, preview, run as a resumable background job.

Rules enforced here:
- an import goes through the same ingest engine as capture (`lead_ingest_batch`),
  in chunks of settings.LEADS_IMPORT_CHUNK_ROWS, so scrubbing, dedupe and merge are identical;
- progress is committed per chunk in the same transaction as the chunk's leads
  and activities, under a lock on the job row: a crash or a redelivered task
  resumes after the last committed chunk and never counts a row twice;
- a run holds the job's lease (runner token, heartbeat renewed by each chunk
  commit); a chunk commits only under the lease, so two runs never import the
  same rows; a job without a sign of life (worker killed, task lost) is resumed
  by the beat sweep or an admin, after its last committed chunk;
- a chunk that fails as a whole is retried row by row; only the rows that still
  fail are lost (counted as failed, with the error, in the report);
- rows that can't be read (ragged, undecodable, no identity) are reported with
  their original values and never stop the other rows;
- the preview runs the real chunk code inside a transaction that is rolled back.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, suppress
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, models, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from accounts.permissions import Perm
from leadflow.core.csvsafe import neutralize
from leadflow.core.errors import LeadflowError
from leads.importing import (
    CsvInfo,
    ImportFileError,
    Record,
    RowPlan,
    check_size,
    inspect_csv,
    iter_records,
    readable,
    suggest_mapping,
    validate_mapping,
)
from leads.models import (
    MAPPABLE_LEAD_FIELDS,
    ActivityKind,
    Campaign,
    Channel,
    ImportJob,
    ImportStatus,
    Lead,
)
from leads.services.ingest import Outcome, Touch, lead_ingest_batch
from leads.services.outcomes import import_outcomes_fire

PREVIEW_ROWS = 10
log = logging.getLogger(__name__)
ERROR_PARTS_DIR = "imports/errors/parts"
# Database trouble that a retry of the whole task may cure (lost connection,
# SQLite lock timeout): never swallowed as "bad rows".
_INFRASTRUCTURE_ERRORS = (OperationalError, InterfaceError)
# The outcome of a row that didn't become a lead; the others are the engine's.
FAILED = "failed"


class ConsentBasis(models.TextChoices):
    NONE = "none", "None — only rows whose opt-in column says yes"
    EXISTING_CUSTOMER = "existing_customer", "Existing customers (soft opt-in)"
    OPTED_IN = "opted_in", "Opted in at source (every row)"


class ImportStateError(LeadflowError):
    """The import is not in a state that allows this action."""


@dataclass
class RowOutcome:
    record: Record
    outcome: str  # created / merged / junk / failed
    lead_id: int | None = None
    reasons: list[str] = field(default_factory=list)


@dataclass
class PreviewRow:
    number: int
    outcome: str
    reasons: list[str]
    lead: dict[str, Any] | None
    original: list[tuple[str, str]]  # (column, value) of the non-empty cells

    def custom_items(self) -> list[tuple[str, Any]]:
        return list((self.lead or {}).get("custom", {}).items())


@dataclass
class Preview:
    rows: list[PreviewRow]
    samples: dict[str, list[str]]
    error: str = ""


class RunResult:
    DONE = "done"
    CONTINUE = "continue"  # time budget used up; enqueue a continuation
    NOT_STARTED = "not_started"
    SUPERSEDED = "superseded"  # another run committed this chunk first


# --- upload ------------------------------------------------------------------


def import_job_create(*, organization, user, upload) -> ImportJob:
    """Store an uploaded CSV with its detected encoding, delimiter, header and row
    count, and suggest a mapping. Raises ImportFileError for files we can't read."""
    check_size(upload.size)
    upload.seek(0)
    info = inspect_csv(upload)
    name = os.path.basename(str(upload.name or "")).strip()[:255] or "import.csv"
    job = ImportJob(
        organization=organization,
        created_by=user,
        original_name=name,
        size=upload.size,
        encoding=info.encoding,
        delimiter=info.delimiter,
        header=info.header,
        total_rows=info.total_rows,
        mapping=suggest_mapping(info.header),
    )
    upload.seek(0)
    # A random stored name: the user's file name is kept in original_name only.
    job.file.save(f"{uuid.uuid4().hex}.csv", File(upload), save=False)
    try:
        job.save()
    except Exception:
        job.file.delete(save=False)
        raise
    return job


def import_jobs():
    """The organization's imports, newest first (with what the list shows)."""
    return ImportJob.objects.select_related("created_by", "campaign").order_by("-created_at", "-pk")


def _csv_info(job: ImportJob, binary: IO[bytes]) -> CsvInfo:
    if job.header and job.encoding and job.delimiter:
        return CsvInfo(job.encoding, job.delimiter, list(job.header), job.total_rows)
    return inspect_csv(binary)  # a job stored without its detected format


def _open(job: ImportJob) -> IO[bytes]:
    try:
        return job.file.open("rb")
    except (FileNotFoundError, ValueError) as exc:
        raise ImportFileError("The uploaded file is no longer available; upload it again.") from exc


def import_job_header(*, job: ImportJob) -> list[str]:
    if job.header:
        return list(job.header)
    with _open(job) as binary:
        return _csv_info(job, binary).header


# --- mapping rows through the engine ----------------------------------------


def import_touch(*, job: ImportJob, campaign: Campaign | None, consent_basis: str) -> Touch:
    origin = f"import: {job.original_name}"
    if consent_basis == ConsentBasis.EXISTING_CUSTOMER:
        origin += " (existing customer)"
    properties: dict[str, Any] = {"import_job": job.pk, "file": job.original_name}
    if consent_basis and consent_basis != ConsentBasis.NONE:
        properties["consent_basis"] = consent_basis
    return Touch(
        source=campaign.channel if campaign else Channel.OTHER,
        campaign=campaign,
        activity_kind=ActivityKind.IMPORT,
        activity_properties=properties,
        consent_origin=origin,
    )


def _plan(header: list[str], mapping: Mapping[str, str], consent_basis: str) -> RowPlan:
    opt_in_all = consent_basis in (ConsentBasis.EXISTING_CUSTOMER, ConsentBasis.OPTED_IN)
    return RowPlan.build(header, mapping, opt_in_all=opt_in_all)


def _reason_messages(result) -> list[str]:
    messages = [r["message"] for r in result.reasons if r.get("code") != "email_missing"]
    if result.outcome == Outcome.INVALID:
        messages.insert(
            0, "No usable email address and no record ID: the row can't be matched to a lead."
        )
    return messages


def _from_result(record: Record, result) -> RowOutcome:
    outcome = FAILED if result.outcome == Outcome.INVALID else result.outcome
    return RowOutcome(
        record=record,
        outcome=outcome,
        lead_id=result.lead_id,
        reasons=_reason_messages(result),
    )


def _failed(record: Record, message: str) -> RowOutcome:
    return RowOutcome(record=record, outcome=FAILED, reasons=[message])


def _ingest_one(organization_id: int, record: Record, row: dict, touch: Touch) -> RowOutcome:
    try:
        with transaction.atomic():
            (result,) = lead_ingest_batch(organization_id=organization_id, rows=[row], touch=touch)
    except _INFRASTRUCTURE_ERRORS:
        raise
    except Exception as exc:
        return _failed(record, f"Could not be imported: {str(exc)[:500] or type(exc).__name__}")
    return _from_result(record, result)


def ingest_records(
    *, organization_id: int, records: list[Record], plan: RowPlan, touch: Touch
) -> list[RowOutcome]:
    """Feed a chunk of records to the engine; row by row if the chunk fails as a whole.

    Must run inside a transaction (the caller's), in the organization's scope.
    """
    outcomes: dict[int, RowOutcome] = {}
    rows: list[dict] = []
    readable_records: list[Record] = []
    for record in records:
        if record.problem:
            outcomes[record.number] = _failed(record, record.problem)
            continue
        row = plan.row(record.values)
        row["properties"] = {"row": record.number}
        rows.append(row)
        readable_records.append(record)
    if rows:
        try:
            with transaction.atomic():
                results = lead_ingest_batch(organization_id=organization_id, rows=rows, touch=touch)
        except _INFRASTRUCTURE_ERRORS:
            raise
        except Exception:
            for record, row in zip(readable_records, rows, strict=True):
                outcomes[record.number] = _ingest_one(organization_id, record, row, touch)
        else:
            for result in results:
                record = readable_records[result.index]
                outcomes[record.number] = _from_result(record, result)
    if plan.outcome is not None:  # a past lead's won/lost, recorded by the pipeline
        import_outcomes_fire(
            organization_id,
            ((outcomes[r.number].lead_id, plan.outcome_of(r.values)) for r in readable_records),
        )
    return [outcomes[r.number] for r in records]


# --- preview -----------------------------------------------------------------

# What the preview shows of each lead: every importable field, as it would be stored.
_SNAPSHOT_FIELDS = (*MAPPABLE_LEAD_FIELDS, "custom", "quality")


def _snapshot(lead: Lead) -> dict[str, Any]:
    values = {name: getattr(lead, name) for name in _SNAPSHOT_FIELDS}
    values["source"] = lead.get_latest_source_display()
    values["full_name"] = lead.full_name
    return values


def _samples(header: list[str], records: list[Record], limit: int = 3) -> dict[str, list[str]]:
    samples: dict[str, list[str]] = {name: [] for name in header}
    for record in records:
        if record.problem:
            continue
        for name, value in zip(header, record.values, strict=False):
            value = value.strip()
            if value and value not in samples[name] and len(samples[name]) < limit:
                samples[name].append(value)
    return samples


def import_preview(
    *,
    job: ImportJob,
    mapping: Mapping[str, str],
    campaign: Campaign | None,
    consent_basis: str,
    limit: int = PREVIEW_ROWS,
) -> Preview:
    """What the first rows would become: the real chunk code (scrub, dedupe,
    merge) run in a transaction that is rolled back, so nothing is written."""
    with _open(job) as binary:
        info = _csv_info(job, binary)
        width = len(info.header)
        with closing(
            iter_records(binary, encoding=info.encoding, delimiter=info.delimiter, width=width)
        ) as stream:
            records = list(islice(stream, limit))
    samples = _samples(info.header, records)
    try:
        clean = validate_mapping(info.header, mapping)
    except LeadflowError as exc:
        return Preview(rows=[], samples=samples, error=str(exc))
    plan = _plan(info.header, clean, consent_basis)
    touch = import_touch(job=job, campaign=campaign, consent_basis=consent_basis)
    with transaction.atomic():
        outcomes = ingest_records(
            organization_id=job.organization_id, records=records, plan=plan, touch=touch
        )
        leads = Lead.objects.in_bulk([o.lead_id for o in outcomes if o.lead_id])
        snapshots = {pk: _snapshot(lead) for pk, lead in leads.items()}
        transaction.set_rollback(True)
    rows = [
        PreviewRow(
            number=o.record.number,
            outcome=o.outcome,
            reasons=o.reasons,
            lead=snapshots.get(o.lead_id) if o.lead_id else None,
            original=[
                (name, readable(value))
                for name, value in zip(info.header, o.record.values, strict=False)
                if value.strip()
            ],
        )
        for o in outcomes
    ]
    return Preview(rows=rows, samples=samples)


# --- start / resume / discard ----------------------------------------------------


def _locked(job: ImportJob) -> ImportJob:
    return ImportJob.objects.select_for_update().get(pk=job.pk)


def _send(organization_id: int, job_id: int) -> None:
    from leads.tasks.imports import import_job_run as task  # tasks import this module

    kwargs = {"organization_id": organization_id, "job_id": job_id}
    try:
        # No publish retries: with the broker down the sweep is the retry.
        task.apply_async(kwargs=kwargs, retry=False)
    except BrokerError:
        log.warning("Broker unavailable; import %s left for the sweep", job_id)


def _enqueue(job: ImportJob) -> None:
    """Send a run once the transaction commits, and note when: a job queued for
    longer than the stale limit without a run picking it up is sent again."""
    job.queued_at = timezone.now()
    job.save(update_fields=["queued_at"])
    organization_id, job_id = job.organization_id, job.pk
    transaction.on_commit(lambda: _send(organization_id, job_id))


@transaction.atomic
def import_job_start(
    *,
    job: ImportJob,
    mapping: Mapping[str, str],
    campaign: Campaign | None,
    consent_basis: str,
) -> ImportJob:
    """Save the mapping and queue the job; only an uploaded job can start."""
    if consent_basis not in ConsentBasis.values:
        raise ImportStateError("Choose a consent basis.")
    header = import_job_header(job=job)
    clean = validate_mapping(header, mapping)
    locked = _locked(job)
    if locked.status != ImportStatus.UPLOADED:
        raise ImportStateError("This import has already been started.")
    if campaign is not None and campaign.organization_id != locked.organization_id:
        raise ImportStateError("Choose one of your campaigns.")
    locked.header = header
    locked.mapping = clean
    locked.campaign = campaign
    locked.consent_basis = consent_basis
    locked.status = ImportStatus.QUEUED
    locked.error_message = ""
    locked.save(
        update_fields=["header", "mapping", "campaign", "consent_basis", "status", "error_message"]
    )
    _enqueue(locked)
    return locked


@transaction.atomic
def import_job_resume(*, job: ImportJob, membership=None) -> ImportJob:
    """Queue a failed or stalled job again; it carries on after its last committed chunk.

    A failed job can be resumed by whoever may import. A stalled one (queued or
    running without a sign of life: its worker died, its task was lost) is
    resumed by the sweep, or sooner by an admin; a job whose run is alive is
    left alone (two runs never hold the same job).
    """
    locked = _locked(job)
    if locked.status == ImportStatus.FAILED:
        locked.status = ImportStatus.QUEUED
        locked.error_message = ""
        locked.save(update_fields=["status", "error_message"])
    elif locked.status in (ImportStatus.QUEUED, ImportStatus.RUNNING):
        if membership is not None and not membership.has_perm(Perm.MANAGE_ORGANIZATION):
            raise ImportStateError("Only an admin can resume an import that is under way.")
        if not locked.stalled:
            raise ImportStateError(
                "This import is still running; it can be resumed once it shows no progress."
            )
    else:
        raise ImportStateError("Only a failed or stalled import can be resumed.")
    locked.resumed_count += 1
    locked.save(update_fields=["resumed_count"])
    _enqueue(locked)
    return locked


def stale_import_organizations() -> list[int]:
    """Organizations holding stalled imports (outside any tenant: ids only)."""
    return sorted(
        {job.organization_id for job in _active(ImportJob._base_manager.all()) if job.sweep_due}
    )


def _active(qs):
    return qs.filter(status__in=(ImportStatus.QUEUED, ImportStatus.RUNNING)).only(
        "pk", "organization_id", "status", "heartbeat_at", "queued_at", "created_at"
    )


def import_jobs_resume_stalled() -> list[int]:
    """Send a run for each of the organization's stalled imports (the sweep).

    A job whose row is locked is mid-chunk (alive) and skipped; each one sent is
    marked queued again, so the next sweep waits another stale period.
    """
    resumed = []
    for job in _active(ImportJob.objects.all()):
        if not job.sweep_due:
            continue
        with transaction.atomic():
            locked = ImportJob.objects.select_for_update(skip_locked=True).filter(pk=job.pk).first()
            if locked is None or not locked.sweep_due:
                continue
            locked.resumed_count += 1
            locked.save(update_fields=["resumed_count"])
            _enqueue(locked)
        log.warning("Import %s stalled since %s; resumed", job.pk, job.last_sign_of_life)
        resumed.append(job.pk)
    return resumed


def import_job_discard(*, job: ImportJob) -> None:
    """Delete an upload that was never started, with its file."""
    with transaction.atomic():
        locked = _locked(job)
        if locked.status != ImportStatus.UPLOADED:
            raise ImportStateError("An import that has run is kept as history.")
        file_name = locked.file.name
        locked.delete()
    if file_name:
        default_storage.delete(file_name)


@transaction.atomic
def import_job_fail(*, job_id: int, message: str) -> None:
    """Mark a job failed (after the task gave up); it can be resumed later."""
    job = ImportJob.objects.select_for_update().filter(pk=job_id).first()
    if job is None or job.status == ImportStatus.DONE:
        return
    job.status = ImportStatus.FAILED
    job.error_message = message[:2000]
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "error_message", "finished_at"])


# --- the run -------------------------------------------------------------------------


def _chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _part_name(job_id: int, start: int) -> str:
    return f"{ERROR_PARTS_DIR}/{job_id}/{start:010d}.csv"


def _part_starts(job_id: int) -> list[int]:
    try:
        _dirs, files = default_storage.listdir(f"{ERROR_PARTS_DIR}/{job_id}")
    except FileNotFoundError:
        return []
    return sorted(int(f.removesuffix(".csv")) for f in files if f.removesuffix(".csv").isdigit())


def _safe_cell(value: str) -> str:
    return neutralize(value)


def _write_part(job_id: int, start: int, outcomes: list[RowOutcome], *, sweep: bool) -> None:
    """Store the chunk's report lines under a name derived from its first row.

    Runs under the job lock, before the chunk commits: parts at or past the
    committed offset are leftovers of a run that died before committing.
    """
    stale = [s for s in _part_starts(job_id) if s >= start] if sweep else [start]
    for old in stale:
        default_storage.delete(_part_name(job_id, old))
    reported = [o for o in outcomes if o.outcome in (FAILED, Outcome.JUNK)]
    if not reported:
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for o in reported:
        writer.writerow(
            [o.record.number, o.outcome, "; ".join(o.reasons)]
            + [_safe_cell(readable(v)) for v in o.record.values]
        )
    default_storage.save(_part_name(job_id, start), ContentFile(buffer.getvalue().encode()))


def _holds(locked: ImportJob, runner: str, start: int | None = None) -> bool:
    return (
        locked.status == ImportStatus.RUNNING
        and locked.runner == runner
        and (start is None or locked.processed_rows == start)
    )


def _commit_chunk(
    job: ImportJob,
    runner: str,
    start: int,
    records: list[Record],
    plan: RowPlan,
    touch: Touch,
    *,
    sweep: bool,
) -> bool:
    """Import one chunk and move the progress marker past it in one transaction,
    under the job lock, only while this run holds the lease; renews the heartbeat."""
    with transaction.atomic():
        locked = _locked(job)
        if not _holds(locked, runner, start):
            return False
        outcomes = ingest_records(
            organization_id=locked.organization_id, records=records, plan=plan, touch=touch
        )
        _write_part(locked.pk, start, outcomes, sweep=sweep)
        counts = Counter(o.outcome for o in outcomes)
        locked.processed_rows = start + len(records)
        locked.created_count += counts[Outcome.CREATED]
        locked.merged_count += counts[Outcome.MERGED]
        locked.junk_count += counts[Outcome.JUNK]
        locked.failed_count += counts[FAILED]
        locked.heartbeat_at = timezone.now()
        locked.save(
            update_fields=[
                "heartbeat_at",
                "processed_rows",
                "created_count",
                "merged_count",
                "junk_count",
                "failed_count",
            ]
        )
    return True


def _claim(job: ImportJob, runner: str) -> bool:
    """Take the job's lease: a queued job, or a running one whose run left it
    (released, or no heartbeat for the stale limit). Never a live run's job."""
    with transaction.atomic():
        locked = _locked(job)
        if locked.status not in (ImportStatus.QUEUED, ImportStatus.RUNNING):
            return False
        if locked.status == ImportStatus.RUNNING and locked.runner and not locked.stalled:
            return False
        now = timezone.now()
        locked.status = ImportStatus.RUNNING
        locked.runner = runner
        locked.heartbeat_at = now
        locked.started_at = locked.started_at or now
        locked.save(update_fields=["status", "runner", "heartbeat_at", "started_at"])
    job.refresh_from_db()
    return True


def _release(job: ImportJob, runner: str) -> None:
    """Give the lease up (the run's continuation, or a retry, takes it next)."""
    with transaction.atomic():
        locked = _locked(job)
        if _holds(locked, runner):
            locked.runner = ""
            locked.save(update_fields=["runner"])


def _write_report(spool: IO[bytes], job_id: int, header: list[str], starts: list[int]) -> None:
    # utf-8-sig: Excel reads a BOM-less UTF-8 CSV as ANSI and mangles accents.
    text = io.TextIOWrapper(spool, encoding="utf-8-sig", newline="")
    csv.writer(text).writerow(["Row", "Outcome", "Reasons", *[_safe_cell(h) for h in header]])
    for start in starts:
        with default_storage.open(_part_name(job_id, start), "rb") as part:
            text.write(part.read().decode())
    text.flush()
    text.detach()
    spool.seek(0)


def _finish(job: ImportJob, runner: str, header: list[str]) -> None:
    starts = _part_starts(job.pk)
    with transaction.atomic():
        locked = _locked(job)
        if not _holds(locked, runner):
            return
        if starts:
            stem = os.path.splitext(locked.original_name)[0][:80] or "import"
            with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
                _write_report(spool, locked.pk, header, starts)
                locked.error_report.save(f"{stem}-errors.csv", File(spool), save=False)
        locked.status = ImportStatus.DONE
        locked.total_rows = locked.processed_rows
        locked.finished_at = timezone.now()
        locked.runner = ""
        locked.save(update_fields=["status", "total_rows", "finished_at", "error_report", "runner"])
    for start in starts:
        default_storage.delete(_part_name(job.pk, start))


def import_job_run(*, job_id: int, time_budget: float | None = None) -> str:
    """Import the job's rows after the last committed chunk.

    Idempotent: a finished job is a no-op. A run first takes the job's lease, so
    a redelivered or re-sent run leaves a job alone while another run is alive,
    and takes over one whose run died; each chunk commits only under the lease.
    With a time budget, returns RunResult.CONTINUE when it ran out before the end.
    """
    job = ImportJob.objects.select_related("campaign").get(pk=job_id)
    if job.status == ImportStatus.DONE:
        return RunResult.DONE
    runner = uuid.uuid4().hex
    if not _claim(job, runner):
        return RunResult.NOT_STARTED
    try:
        result = _run(job, runner, time_budget)
    except BaseException:
        with suppress(Exception):  # the database may be what failed
            _release(job, runner)
        raise
    if result == RunResult.CONTINUE:
        _release(job, runner)
    return result


def _run(job: ImportJob, runner: str, time_budget: float | None) -> str:
    deadline = time.monotonic() + time_budget if time_budget else None
    touch = import_touch(job=job, campaign=job.campaign, consent_basis=job.consent_basis)
    with _open(job) as binary:
        info = _csv_info(job, binary)
        plan = _plan(info.header, job.mapping, job.consent_basis)
        width = len(info.header)
        start = job.processed_rows
        sweep = True
        with closing(
            iter_records(binary, encoding=info.encoding, delimiter=info.delimiter, width=width)
        ) as records:
            for chunk in _chunks(islice(records, start, None), settings.LEADS_IMPORT_CHUNK_ROWS):
                # At least one chunk per run, and a run that reaches the end finishes.
                if not sweep and deadline is not None and time.monotonic() > deadline:
                    return RunResult.CONTINUE
                if not _commit_chunk(job, runner, start, chunk, plan, touch, sweep=sweep):
                    return RunResult.SUPERSEDED
                start += len(chunk)
                sweep = False
    _finish(job, runner, info.header)
    return RunResult.DONE
