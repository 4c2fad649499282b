"""manage.py import_leads <slug> <file.csv> [--outcome-column Converted]

Runs a CSV file through the same import engine as the import pages (upload,
suggested mapping, chunked ingest, error report), in this process. With
--outcome-column, that column's won/lost values become stage history."""

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Membership, Organization, Role
from leadflow.core.errors import LeadflowError
from leadflow.core.tenancy import tenant_scope
from leads.importing import MAX_IMPORT_BYTES
from leads.importing.mapping import OUTCOME, OUTCOME_DATE
from leads.models import ImportJob
from leads.services import imports


class Command(BaseCommand):
    help = "Import leads from a CSV file into an organization."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("file")
        parser.add_argument("--outcome-column", default=None)
        parser.add_argument("--outcome-date-column", default=None)
        parser.add_argument("--consent", default="none", choices=imports.ConsentBasis.values)

    def handle(self, *args, slug, file, outcome_column, outcome_date_column, consent, **options):
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            raise CommandError(f"No organization {slug!r}.")
        path = Path(file)
        if not path.is_file() or path.stat().st_size > MAX_IMPORT_BYTES:
            raise CommandError(
                f"{file} is not a readable CSV file of at most {MAX_IMPORT_BYTES:,} bytes."
            )
        admin = (
            Membership.objects.filter(organization=org, role=Role.ADMIN)
            .select_related("user")
            .first()
        )
        with tenant_scope(org):
            try:
                job = imports.import_job_create(
                    organization=org,
                    user=admin.user if admin else None,
                    upload=SimpleUploadedFile(path.name, path.read_bytes()),
                )
                mapping = dict(job.mapping)
                for column, target in (
                    (outcome_column, OUTCOME),
                    (outcome_date_column, OUTCOME_DATE),
                ):
                    if column is None:
                        continue
                    if column not in mapping:
                        raise CommandError(f"No column {column!r} in the file's header.")
                    mapping[column] = target
                with transaction.atomic():
                    imports.import_job_start(
                        job=job, mapping=mapping, campaign=None, consent_basis=consent
                    )
                imports.import_job_run(job_id=job.pk)  # here; a queued copy finds it done
            except LeadflowError as exc:
                raise CommandError(str(exc)) from exc
            job = ImportJob.objects.get(pk=job.pk)
        self.stdout.write(
            f"{job.processed_rows:,} rows: {job.created_count:,} created, "
            f"{job.merged_count:,} merged, {job.junk_count:,} junk, {job.failed_count:,} failed."
        )
