"""CSV import throughput against a plain bulk insert of the same rows.

    python scripts/with_services.py -- .venv/bin/python bench/import.py [--profile] [--reimport]

Imports the shared 9,237-lead file through the importer's job function (the
service the Celery task calls: read, map, scrub, dedupe, activities, progress
and all), synchronously, into a fresh PostgreSQL database. In the same run it
inserts the same rows the plainest ways (the floor): Django bulk_create of Lead
rows holding just the raw mapped values, and PostgreSQL COPY of those rows.
Prints rows/s for each and the importer's share of the floor (goal: >= 25%).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import cumulative, profiled, rate, setup_django, throwaway_database, timed

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "x-education-leads.csv"
GOAL = 0.25

# Where the importer's time goes (label -> (file suffix, function)).
PHASES = {
    "job total": ("leads/services/imports.py", "import_job_run"),
    "read + map rows (importer)": ("leads/importing/values.py", "row"),
    "ingest engine": ("leads/services/ingest.py", "lead_ingest_batch"),
    "  scrub (scrub_lead)": ("leads/scrub/lead.py", "scrub_lead"),
    "  look up existing leads": ("leads/services/ingest.py", "_existing"),
    "  write leads (bulk_create/update)": ("leads/services/ingest.py", "_write_batch"),
    "  record activities": ("leads/services/ingest.py", "_record_activities"),
    "  Django bulk_create (all)": ("django/db/models/query.py", "bulk_create"),
    "  SQL execution (all)": ("django/db/backends/utils.py", "_execute"),
    "error report parts": ("leads/services/imports.py", "_write_part"),
}


def make_tenant(slug: str):
    from accounts.models import Organization, User

    org = Organization.objects.create(name=slug.title(), slug=slug)
    user = User.objects.create_user(email=f"bench@{slug}.example", password=None)
    return org, user


def run_importer(path: Path, org, user, *, profile: bool):
    from django.core.files import File

    from leadflow.core.tenancy import tenant_scope
    from leads.models import ImportJob, ImportStatus
    from leads.services import imports

    with tenant_scope(org), path.open("rb") as fh:
        job = imports.import_job_create(
            organization=org, user=user, upload=File(fh, name=path.name)
        )
        # What import_job_start saves, minus the enqueue: the job runs right here.
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportStatus.QUEUED, consent_basis=imports.ConsentBasis.NONE
        )

        def run():
            return imports.import_job_run(job_id=job.pk)

        if profile:
            seconds, result, stats = profiled(run)
        else:
            (seconds, result), stats = timed(run), None
        job.refresh_from_db()
    assert result == imports.RunResult.DONE, result
    return seconds, job, stats


def raw_rows(path: Path) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(external_id, city, custom) of each row, straight from the file: the
    mapped values with no scrubbing or parsing."""
    from leads.importing import suggest_mapping

    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        targets = list(suggest_mapping(header).values())
        ext, city = targets.index("external_id"), targets.index("city")
        custom = [(i, t.removeprefix("custom:")) for i, t in enumerate(targets) if "custom:" in t]
        for values in reader:
            if values:
                yield (
                    values[ext],
                    values[city][:120],
                    {k: values[i] for i, k in custom if values[i]},
                )


def raw_leads(path: Path, org) -> list:
    from leads.models import Lead

    return [
        Lead(organization=org, external_id=ext, city=city, custom=custom)
        for ext, city, custom in raw_rows(path)
    ]


def run_bulk_create(path: Path, org) -> tuple[float, int]:
    from django.db import transaction

    from leadflow.core.tenancy import tenant_scope
    from leads.models import Lead

    def insert():
        leads = raw_leads(path, org)
        with transaction.atomic():
            Lead.objects.bulk_create(leads, batch_size=1000)
        return len(leads)

    with tenant_scope(org):
        return timed(insert)


def run_copy(path: Path, org) -> tuple[float, int]:
    """COPY ... FROM STDIN: every Lead column, Django's defaults computed once,
    only the mapped values change per row — as lean as an insert gets."""
    from django.db import connection, transaction

    from leads.models import Lead

    fields = [f for f in Lead._meta.concrete_fields if not f.primary_key]
    position = {f.name: i for i, f in enumerate(fields)}
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    template = Lead(organization=org)
    defaults = [f.get_db_prep_save(f.pre_save(template, add=True), connection) for f in fields]

    def insert():
        rows = 0
        with transaction.atomic(), connection.cursor() as cursor:
            sql = f"COPY {Lead._meta.db_table} ({columns}) FROM STDIN"
            with cursor.cursor.copy(sql) as copy:
                for ext, city, custom in raw_rows(path):
                    row = list(defaults)
                    row[position["external_id"]] = ext
                    row[position["city"]] = city
                    row[position["custom"]] = json.dumps(custom)
                    copy.write_row(row)
                    rows += 1
        return rows

    return timed(insert)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds; the best time of each method counts"
    )
    parser.add_argument(
        "--profile", action="store_true", help="one more, profiled importer run, broken down"
    )
    parser.add_argument(
        "--reimport", action="store_true", help="also time a second import of the file (merges)"
    )
    args = parser.parse_args()
    setup_django()

    from django.db import connection

    with throwaway_database():
        version = connection.cursor().connection.info.server_version
        print(f"PostgreSQL {version}, file {args.file.name}, best of {args.repeat} rounds")
        best: dict[str, tuple[float, int]] = {}

        def keep(method: str, seconds: float, rows: int) -> None:
            if method not in best or seconds < best[method][0]:
                best[method] = (seconds, rows)

        # Rounds alternate the methods (fresh tenants each time, so every
        # importer run creates), which evens out a busy machine.
        for n in range(args.repeat):
            org, user = make_tenant(f"bench-import-{n}")
            seconds, job, _ = run_importer(args.file, org, user, profile=False)
            assert (job.created_count, job.failed_count) == (job.processed_rows, 0)
            keep("importer", seconds, job.processed_rows)
            keep("bulk_create", *run_bulk_create(args.file, make_tenant(f"bench-floor-{n}")[0]))
            keep("COPY", *run_copy(args.file, make_tenant(f"bench-copy-{n}")[0]))
        rates = {}
        for method, (seconds, rows) in best.items():
            rates[method] = rate(rows, seconds)
            label = f"{method}:"
            print(f"{label:<13}{rows:>6} rows in {seconds:6.2f} s = {rates[method]:8.0f} rows/s")
        ratio = rates["importer"] / rates["bulk_create"]
        verdict = "meets" if ratio >= GOAL else "MISSES"
        print(
            f"importer / bulk_create floor = {ratio:.0%} ({verdict} the {GOAL:.0%} goal); "
            f"importer / COPY = {rates['importer'] / rates['COPY']:.0%}"
        )
        if args.profile:
            org, user = make_tenant("bench-profile")
            seconds, _job, stats = run_importer(args.file, org, user, profile=True)
            print(f"\nwhere the importer's time goes (cumulative s, {seconds:.2f} s profiled run):")
            for label, value in cumulative(stats, PHASES).items():
                print(f"  {label:<38} {value:7.2f}")
        if args.reimport:
            seconds, job, _ = run_importer(args.file, org, user, profile=False)
            print(
                f"\nre-import:   {job.processed_rows:>6} rows in {seconds:6.2f} s = "
                f"{rate(job.processed_rows, seconds):8.0f} rows/s (created {job.created_count}, "
                f"merged {job.merged_count})"
            )


if __name__ == "__main__":
    main()
