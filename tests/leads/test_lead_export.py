"""The lead CSV export: chosen columns, importable phones, background jobs, audit."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import AuditEvent
from leadflow.core.tenancy import tenant_scope
from leads.models import ExportJob, ExportStatus, ImportStatus, Lead
from leads.services import imports
from tests.factories import (
    CampaignFactory,
    CaptureFormFactory,
    CaptureFormFieldFactory,
    LeadFactory,
)

pytestmark = pytest.mark.django_db

PHONES = ["+4930123456", "+14155550100", "-"]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def url(name, org, **kwargs):
    return reverse(f"leads:{name}", kwargs={"org_slug": org.slug, **kwargs})


@pytest.fixture
def leads(org, other_org, admin):
    LeadFactory(organization=other_org, email="secret@globex.com", phone="+4930999")
    form = CaptureFormFactory(organization=org)
    CaptureFormFieldFactory(form=form, key="team_size", label="Team size", maps_to="custom")
    campaign = CampaignFactory(organization=org, name="Spring webinar")
    return [
        LeadFactory(
            organization=org,
            email=f"p{n}@initech.com",
            phone=phone,
            score=40 + n,
            grade="A",
            band="hot",
            stage="mql",
            owner=admin,
            first_campaign=campaign,
            company_name='=HYPERLINK("x")' if n == 0 else "Initech",
            custom={"team_size": "11-50"},
        )
        for n, phone in enumerate(PHONES)
    ]


def read(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_chosen_columns_with_labels_and_importable_phones(admin_client, org, leads):
    columns = ["email", "phone", "company", "score", "grade", "band", "stage", "owner"]
    columns += ["first_campaign", "custom:team_size"]
    response = admin_client.post(
        url("lead_export_page", org), {"columns": columns, "query": "o=email"}
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = read(response)
    assert list(rows[0]) == [*columns[:-1], "Team size"]
    assert [r["email"] for r in rows] == ["p0@initech.com", "p1@initech.com", "p2@initech.com"]
    first = rows[0]
    assert first["phone"] == "+4930123456"  # as stored: no quote in front
    assert first["company"] == '\'=HYPERLINK("x")'  # a real formula is neutralized
    assert rows[2]["phone"] == "'-"  # a lone sign is no number
    assert (first["score"], first["grade"], first["band"], first["stage"]) == (
        "40",
        "A",
        "Hot",
        "MQL",
    )
    assert first["owner"] == "admin@acme.example"
    assert first["first_campaign"] == "Spring webinar" and first["Team size"] == "11-50"
    with tenant_scope(org):
        event = AuditEvent.objects.get(action="export.created")
    assert event.data["columns"] == columns and event.data["filters"] == "o=email"


def test_the_page_offers_custom_attributes_by_label(admin_client, org, leads):
    html = admin_client.get(url("lead_export_page", org) + "?country=DE").content.decode()
    assert "Team size" in html and 'value="custom:team_size"' in html
    assert 'value="country=DE"' in html  # the list's filters are carried over


def test_no_column_is_refused(admin_client, org, leads):
    response = admin_client.post(url("lead_export_page", org), {"query": ""})
    assert response.status_code == 400 and "Choose at least one column" in response.content.decode()


def test_export_then_import_keeps_the_phones(admin_client, org, other_org, leads, make_member):
    """Round trip: the exported file, imported into another organization, gives
    the same phones."""
    response = admin_client.post(
        url("lead_export_page", org), {"columns": ["email", "phone"], "query": ""}
    )
    data = b"".join(response.streaming_content)
    member = make_member(other_org)
    with tenant_scope(other_org):
        job = imports.import_job_create(
            organization=other_org,
            user=member.user,
            upload=SimpleUploadedFile("leads.csv", data),
        )
        assert job.mapping == {"email": "email", "phone": "phone"}
        imports.import_job_start(job=job, mapping=job.mapping, campaign=None, consent_basis="none")
        imports.import_job_run(job_id=job.pk, time_budget=60)
        assert import_status(job) == ImportStatus.DONE
        phones = dict(
            Lead.objects.filter(email__endswith="@initech.com").values_list("email", "phone")
        )
    assert phones["p0@initech.com"] == "+4930123456"
    assert phones["p1@initech.com"] == "+14155550100"


def import_status(job):
    job.refresh_from_db()
    return job.status


def test_a_large_export_runs_in_the_background(
    admin_client, org, other_org, leads, settings, django_capture_on_commit_callbacks
):
    settings.LEADS_EXPORT_SYNC_ROWS = 2
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            url("lead_export_page", org), {"columns": ["email", "phone"], "query": "o=email"}
        )
    with tenant_scope(org):
        job = ExportJob.objects.get()
        assert AuditEvent.objects.get(action="export.created").subject_id == job.pk
    assert response.status_code == 302
    assert response["Location"] == url("lead_export_job", org, export_id=job.pk)
    assert (job.status, job.processed_rows, job.total_rows, job.percent) == ("done", 3, 3, 100)
    page = admin_client.get(response["Location"]).content.decode()
    assert 'data-testid="export-download"' in page and 'aria-valuenow="100"' in page
    download = admin_client.get(url("lead_export_download", org, export_id=job.pk))
    body = b"".join(download.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows == [["email", "phone"]] + [[f"p{n}@initech.com", p] for n, p in [
        (0, "+4930123456"), (1, "+14155550100"), (2, "'-")
    ]]  # fmt: skip
    # Another organization's member can't see it.
    with tenant_scope(other_org):
        assert not ExportJob.objects.exists()


def test_job_progress_while_running_and_foreign_jobs(admin_client, org, other_org, admin):
    with tenant_scope(org):
        job = ExportJob.objects.create(
            organization=org, membership=admin, columns=["email"], total_rows=10,
            processed_rows=4, status=ExportStatus.RUNNING,
        )  # fmt: skip
    page = admin_client.get(url("lead_export_job", org, export_id=job.pk)).content.decode()
    assert 'hx-trigger="every 1s"' in page and "4 of 10 rows" in page
    assert "export-download" not in page
    early = admin_client.get(url("lead_export_download", org, export_id=job.pk))
    assert early.status_code == 302
    with tenant_scope(other_org):
        foreign = ExportJob.objects.create(organization=other_org, columns=["email"])
    assert admin_client.get(url("lead_export_job", org, export_id=foreign.pk)).status_code == 404
    download = admin_client.get(url("lead_export_download", org, export_id=foreign.pk))
    assert download.status_code == 404


def test_a_job_run_is_idempotent_and_an_interrupted_one_is_rewritten(org, other_org, admin, leads):
    from leads.services import exports as services

    with tenant_scope(org):
        job = ExportJob.objects.create(
            organization=org, membership=admin, columns=["email", "phone"], query="o=email",
            status=ExportStatus.RUNNING, processed_rows=1, total_rows=3,
        )  # fmt: skip
        assert services.export_job_run(job_id=job.pk) == "done"  # a redelivered run
        job.refresh_from_db()
        first = job.file.name
        assert (job.status, job.processed_rows, job.total_rows) == ("done", 3, 3)
        assert services.export_job_run(job_id=job.pk) == "done"
        job.refresh_from_db()
        assert job.file.name == first  # done work is not redone
        with job.file.open("rb") as handle:
            assert handle.read().decode().count("@initech.com") == 3
        orphan = ExportJob.objects.create(organization=org, membership=None, columns=["email"])
        assert services.export_job_run(job_id=orphan.pk) == "failed"
        orphan.refresh_from_db()
        assert orphan.status == "failed" and "left" in orphan.error_message
