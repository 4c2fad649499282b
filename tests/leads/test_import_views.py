"""Import pages: upload, mapping + preview, start, progress, error report, and
the tenant wall around them."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from leads.forms_imports import ImportUploadForm
from leads.importing import reading
from leads.models import ImportJob, ImportStatus, Lead
from tests.factories import CampaignFactory
from tests.leads.test_import_jobs import PEOPLE, csv_bytes, start, upload


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def list_url(org) -> str:
    return reverse("leads:import_list", kwargs={"org_slug": org.slug})


def job_url(name: str, job, org=None) -> str:
    slug = (org or job.organization).slug
    return reverse(f"leads:{name}", kwargs={"org_slug": slug, "job_id": job.pk})


def mapping_post(job, action="start", **overrides) -> dict:
    data = {f"col_{i}": job.mapping.get(name, "") for i, name in enumerate(job.header)}
    data.update(consent_basis="none", campaign="", action=action)
    data.update(overrides)
    return data


# --- upload --------------------------------------------------------------------------


def test_upload_detects_the_format_and_leads_to_the_mapping(
    org, other_org, admin, admin_client, media_root
):
    data = csv_bytes(
        [*PEOPLE, ["rene@acme-corp.com", "René", "Müller"]], encoding="cp1252", delimiter=";"
    )
    response = admin_client.post(
        list_url(org), {"file": SimpleUploadedFile("Messe München.csv", data)}
    )
    with tenant_scope(org):
        job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == job_url("import_detail", job)
    assert (job.original_name, job.encoding, job.delimiter) == ("Messe München.csv", "cp1252", ";")
    assert (job.header, job.total_rows, job.size) == (PEOPLE[0], 3, len(data))
    assert job.created_by == admin.user
    assert job.status == ImportStatus.UPLOADED
    assert (media_root / job.file.name).read_bytes() == data


def test_uploads_spooled_to_disk_are_read_the_same(org, other_org, admin_client, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 16  # Django writes bigger uploads to a temp file
    data = "\ufeffEmail\tVorname\nzoe@acme-corp.com\tZoë\n".encode()
    response = admin_client.post(list_url(org), {"file": SimpleUploadedFile("tab.tsv", data)})
    assert response.status_code == 302
    with tenant_scope(org):
        job = ImportJob.objects.get()
    assert (job.encoding, job.delimiter, job.header) == ("utf-8-sig", "\t", ["Email", "Vorname"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The submitted file is empty."),
        (b"email,name\n", "The file has a header row but no data rows."),
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", "This looks like an Excel workbook"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00", "binary file"),
    ],
)
def test_unreadable_uploads_get_a_form_error(org, other_org, admin_client, data, message):
    response = admin_client.post(list_url(org), {"file": SimpleUploadedFile("x.csv", data)})
    assert response.status_code == 400
    assert message in response.content.decode()
    with tenant_scope(org):
        assert not ImportJob.objects.exists()


def test_a_file_over_the_limit_is_refused_by_the_form():
    big = UploadedFile(file=None, name="huge.csv", size=100 * 1024 * 1024 + 1)
    form = ImportUploadForm(data={}, files={"file": big})
    assert not form.is_valid()
    assert form.errors["file"] == [
        "The file is 100.0 MB; the limit is 100 MB. "
        "Split it into smaller files and import them one after the other."
    ]


def test_an_upload_over_the_limit_gets_a_form_error(org, other_org, admin_client, monkeypatch):
    monkeypatch.setattr(reading, "MAX_IMPORT_BYTES", 20)
    data = b"email\n" + b"someone@acme-corp.com\n"
    response = admin_client.post(list_url(org), {"file": SimpleUploadedFile("big.csv", data)})
    assert response.status_code == 400
    assert "the limit is 20 bytes" in response.content.decode()
    with tenant_scope(org):
        assert not ImportJob.objects.exists()


# --- mapping and preview -----------------------------------------------------------------


def test_the_mapping_page_suggests_fields_and_previews_rows(org, other_org, admin, admin_client):
    data = csv_bytes([*PEOPLE, ["<script>alert(1)</script>@x", "<b>Eve</b>", "", "", "", "", ""]])
    job = upload(org, admin, data)
    response = admin_client.get(job_url("import_detail", job))
    html = response.content.decode()
    assert response.status_code == 200
    assert '<option value="email" selected>Email</option>' in html
    assert '<option value="source" selected>Lead source (channel)</option>' in html
    assert '<option value="custom:total_visits" selected>' in html
    assert "Bob Stone" in html and "Social" in html  # cleaned values from the engine
    assert "New lead" in html
    assert "&lt;b&gt;Eve&lt;/b&gt;" in html and "<b>Eve</b>" not in html
    assert "<script>alert(1)" not in html
    with tenant_scope(org):
        assert not Lead.objects.exists()


def test_htmx_preview_returns_only_the_preview_with_the_chosen_mapping(
    org, other_org, admin, admin_client
):
    job = upload(org, admin, csv_bytes(PEOPLE))
    response = admin_client.post(
        job_url("import_detail", job),
        mapping_post(job, action="preview", col_0="", consent_basis="opted_in"),
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="import-preview"')
    assert "<html" not in html
    assert "Map a column to Email or to Record ID" in html
    response = admin_client.post(
        job_url("import_detail", job),
        mapping_post(job, action="preview", consent_basis="opted_in"),
        HTTP_HX_REQUEST="true",
    )
    assert "Opted in" in response.content.decode()
    with tenant_scope(org):
        assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.UPLOADED


def test_starting_with_an_unusable_mapping_shows_the_error(org, other_org, admin, admin_client):
    job = upload(org, admin, csv_bytes(PEOPLE))
    response = admin_client.post(job_url("import_detail", job), mapping_post(job, col_0=""))
    assert response.status_code == 400
    assert "Map a column to Email or to Record ID" in response.content.decode()
    with tenant_scope(org):
        assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.UPLOADED


def test_start_runs_the_import_and_the_page_shows_the_results(
    org, other_org, admin, admin_client, django_capture_on_commit_callbacks
):
    with tenant_scope(org):
        campaign = CampaignFactory(organization=org, name="Spring fair", channel="event")
    data = csv_bytes([*PEOPLE, ["", "No", "Identity", "", "", "", ""]])
    job = upload(org, admin, data)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            job_url("import_detail", job),
            mapping_post(job, campaign=str(campaign.pk), consent_basis="existing_customer"),
        )
    assert response.status_code == 302
    with tenant_scope(org):
        job = ImportJob.objects.get(pk=job.pk)
        assert (job.status, job.created_count, job.failed_count) == ("done", 2, 1)
        assert (job.campaign, job.consent_basis) == (campaign, "existing_customer")
        lead = Lead.objects.get(email="bob@globex-corp.com")
        assert lead.email_opt_in_origin == "import: leads.csv (existing customer)"
    html = admin_client.get(job_url("import_detail", job)).content.decode()
    assert "Spring fair" in html and "Existing customers" in html
    assert job_url("import_errors", job) in html
    assert 'hx-trigger="every 1s"' not in html  # finished: nothing to poll


def test_the_progress_partial_polls_while_running_and_stops_when_done(
    org, other_org, admin, admin_client
):
    job = upload(org, admin, csv_bytes(PEOPLE))
    with tenant_scope(org):
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportStatus.RUNNING, processed_rows=1, created_count=1
        )
    url = job_url("import_progress", job)
    response = admin_client.get(url, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert f'hx-get="{url}"' in html and 'hx-trigger="every 1s"' in html
    assert 'aria-valuenow="50"' in html and "1 of 2 rows" in html
    with tenant_scope(org):
        ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.DONE, processed_rows=2)
    html = admin_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in html and 'aria-valuenow="100"' in html and "Done" in html
    # Without htmx the full page is the place to look (it refreshes itself).
    assert admin_client.get(url)["Location"] == job_url("import_detail", job)


def test_the_running_page_reloads_itself_without_javascript(org, other_org, admin, admin_client):
    job = upload(org, admin, csv_bytes(PEOPLE))
    with tenant_scope(org):
        ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.QUEUED)
    html = admin_client.get(job_url("import_detail", job)).content.decode()
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in html
    assert "Waiting for a worker" in html


def test_the_error_report_downloads_as_csv(
    org, other_org, admin, admin_client, django_capture_on_commit_callbacks
):
    job = start(
        upload(org, admin, csv_bytes([["Email", "Name"], ["", "Nobody"]]), name="fair.csv"),
        django_capture_on_commit_callbacks,
    )
    response = admin_client.get(job_url("import_errors", job))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == 'attachment; filename="fair-errors.csv"'
    body = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert body[0] == "Row,Outcome,Reasons,Email,Name"
    assert body[1].startswith("2,failed,No usable email address and no record ID")
    assert body[1].endswith(",,Nobody")


def test_no_error_report_redirects_to_the_import(
    org, other_org, admin, admin_client, django_capture_on_commit_callbacks
):
    job = start(upload(org, admin, csv_bytes(PEOPLE)), django_capture_on_commit_callbacks)
    response = admin_client.get(job_url("import_errors", job))
    assert response.status_code == 302 and response["Location"] == job_url("import_detail", job)


def test_discarding_an_upload_deletes_it_and_its_file(
    org, other_org, admin, admin_client, media_root
):
    job = upload(org, admin, csv_bytes(PEOPLE))
    stored = media_root / job.file.name
    assert stored.exists()
    response = admin_client.post(job_url("import_detail", job), {"action": "discard"})
    assert response.status_code == 302 and response["Location"] == list_url(org)
    assert not stored.exists()
    with tenant_scope(org):
        assert not ImportJob.objects.exists()


def test_a_failed_import_can_be_resumed_from_its_page(
    org, other_org, admin, admin_client, django_capture_on_commit_callbacks
):
    job = upload(org, admin, csv_bytes(PEOPLE))
    with tenant_scope(org):
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportStatus.FAILED, error_message="Worker lost"
        )
    assert "Worker lost" in admin_client.get(job_url("import_detail", job)).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(job_url("import_detail", job), {"action": "resume"})
    assert response.status_code == 302
    with tenant_scope(org):
        job = ImportJob.objects.get(pk=job.pk)
    assert (job.status, job.created_count) == ("done", 2)


# --- list ----------------------------------------------------------------------------------


def test_the_list_shows_past_imports_with_counts_and_progress(
    org, other_org, admin, other_admin, admin_client, django_capture_on_commit_callbacks
):
    done = start(
        upload(org, admin, csv_bytes(PEOPLE), name="done.csv"), django_capture_on_commit_callbacks
    )
    running = upload(org, admin, csv_bytes(PEOPLE), name="running.csv")
    with tenant_scope(org):
        ImportJob.objects.filter(pk=running.pk).update(
            status=ImportStatus.RUNNING, processed_rows=1
        )
    upload(other_org, other_admin, csv_bytes(PEOPLE), name="globex-secret.csv")
    html = admin_client.get(list_url(org)).content.decode()
    assert "done.csv" in html and "running.csv" in html
    assert "globex-secret.csv" not in html
    assert job_url("import_detail", done) in html
    assert 'aria-valuenow="50"' in html  # running import's bar
    assert 'hx-trigger="every 2s"' in html
    partial = admin_client.get(list_url(org), HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<div id="import-jobs"') and "<html" not in partial


def test_the_empty_list_invites_an_upload(org, other_org, admin_client):
    html = admin_client.get(list_url(org)).content.decode()
    assert "No imports yet" in html and 'type="file"' in html
    assert "hx-trigger" not in html[html.index("<main") :]  # no progress polling (the bell's aside)


def test_the_list_runs_a_constant_number_of_queries(
    org,
    other_org,
    admin,
    admin_client,
    django_assert_num_queries,
    django_capture_on_commit_callbacks,
):
    def make(n):
        for i in range(n):
            job = upload(org, admin, csv_bytes(PEOPLE), name=f"f{i}.csv")
            with tenant_scope(org):
                ImportJob.objects.filter(pk=job.pk).update(
                    status=ImportStatus.DONE, campaign=CampaignFactory(organization=org)
                )

    make(1)
    admin_client.get(list_url(org))  # warm the session
    with django_assert_num_queries(5):
        assert admin_client.get(list_url(org)).status_code == 200
    make(6)
    with django_assert_num_queries(5):
        html = admin_client.get(list_url(org)).content.decode()
    assert html.count('href="/o/acme/imports/') >= 7


# --- the tenant wall and roles -----------------------------------------------------------


def test_another_org_cannot_see_start_or_download_a_job(
    org, other_org, admin, other_admin, client_for, django_capture_on_commit_callbacks
):
    job = upload(
        org, admin, csv_bytes([["Email", "Name"], ["", "Nobody"], ["a@acme-corp.com", "A"]])
    )
    outsider = client_for(other_admin)
    for name in ("import_detail", "import_progress", "import_errors"):
        assert outsider.get(job_url(name, job, org=other_org)).status_code == 404
    assert (
        outsider.post(job_url("import_detail", job, org=other_org), mapping_post(job)).status_code
        == 404
    )
    assert (
        outsider.post(
            job_url("import_detail", job, org=other_org), {"action": "discard"}
        ).status_code
        == 404
    )
    with tenant_scope(org):
        assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.UPLOADED
    # Org A's own URLs are closed to org B's members altogether.
    assert outsider.get(job_url("import_detail", job)).status_code == 404
    job = start(job, django_capture_on_commit_callbacks)
    assert job.error_report
    response = outsider.get(job_url("import_errors", job, org=other_org))
    assert response.status_code == 404


def test_sales_reps_cannot_import(org, other_org, admin, sales_rep, client_for):
    job = upload(org, admin, csv_bytes(PEOPLE))
    rep = client_for(sales_rep)
    assert rep.get(list_url(org)).status_code == 403
    assert (
        rep.post(
            list_url(org), {"file": SimpleUploadedFile("x.csv", csv_bytes(PEOPLE))}
        ).status_code
        == 403
    )
    assert rep.post(job_url("import_detail", job), mapping_post(job)).status_code == 403
    with tenant_scope(org):
        assert ImportJob.objects.count() == 1


def test_marketers_can_import(org, other_org, marketer, client_for):
    response = client_for(marketer).post(
        list_url(org), {"file": SimpleUploadedFile("x.csv", csv_bytes(PEOPLE))}
    )
    assert response.status_code == 302
