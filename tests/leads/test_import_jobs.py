"""The import job: mapping rows through the ingest engine, counts, error report,
idempotence and resumption. Tasks run eagerly through Celery (on commit)."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError

from leadflow.core.tenancy import tenant_scope
from leads.importing import MappingError
from leads.models import Activity, ActivityKind, ImportJob, ImportStatus, Lead
from leads.services import imports as services
from leads.tasks import imports as tasks
from tests.factories import CampaignFactory, LeadFactory


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def csv_bytes(rows: list[list[str]], *, encoding: str = "utf-8", delimiter: str = ",") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    return buffer.getvalue().encode(encoding)


def upload(org, member, data: bytes, name: str = "leads.csv") -> ImportJob:
    with tenant_scope(org):
        return services.import_job_create(
            organization=org, user=member.user, upload=SimpleUploadedFile(name, data)
        )


def start(job, capture, *, mapping=None, campaign=None, consent_basis="none") -> ImportJob:
    """Start the job; its task runs (eagerly) when the transaction commits."""
    with tenant_scope(job.organization_id), capture(execute=True):
        services.import_job_start(
            job=job,
            mapping=job.mapping if mapping is None else mapping,
            campaign=campaign,
            consent_basis=consent_basis,
        )
    with tenant_scope(job.organization_id):
        return ImportJob.objects.get(pk=job.pk)


def counts(job) -> tuple[int, int, int, int]:
    return job.created_count, job.merged_count, job.junk_count, job.failed_count


def report_rows(job) -> list[list[str]]:
    with job.error_report.open("rb") as fh:
        return list(csv.reader(io.StringIO(fh.read().decode("utf-8-sig"))))


PEOPLE = [
    ["E-mail", "First Name", "Surname", "Company", "Country", "Lead Source", "TotalVisits"],
    ["ann.lee@northwind.com", "ann", "LEE", "Northwind", "Germany", "Google", "5"],
    ["bob@globex-corp.com", "Bob", "Stone", "Globex", "United States", "Facebook", "2.5"],
]


def test_import_creates_clean_leads_with_an_import_activity(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    job = upload(org, admin, csv_bytes(PEOPLE))
    assert (job.encoding, job.delimiter, job.total_rows) == ("utf-8", ",", 2)
    job = start(job, django_capture_on_commit_callbacks)

    assert job.status == ImportStatus.DONE
    assert counts(job) == (2, 0, 0, 0)
    assert (job.processed_rows, job.total_rows) == (2, 2)
    assert job.started_at and job.finished_at
    assert not job.error_report
    with tenant_scope(org):
        ann = Lead.objects.get(email="ann.lee@northwind.com")
        assert (ann.first_name, ann.last_name, ann.company_name) == ("Ann", "Lee", "Northwind")
        assert (ann.country, ann.first_source, ann.latest_source) == (
            "DE",
            "organic_search",
            "organic_search",
        )
        assert ann.custom == {"total_visits": 5}
        assert Lead.objects.get(email="bob@globex-corp.com").custom == {"total_visits": 2.5}
        activity = Activity.objects.get(lead=ann)
        assert activity.kind == ActivityKind.IMPORT
        assert activity.properties == {"import_job": job.pk, "file": "leads.csv", "row": 2}
        assert not ann.email_opt_in
    with tenant_scope(other_org):
        assert not Lead.objects.exists()
        assert not ImportJob.objects.exists()


def test_same_emails_in_another_org_are_separate_leads(
    org, other_org, admin, other_admin, django_capture_on_commit_callbacks
):
    start(upload(org, admin, csv_bytes(PEOPLE)), django_capture_on_commit_callbacks)
    job_b = start(
        upload(other_org, other_admin, csv_bytes(PEOPLE)), django_capture_on_commit_callbacks
    )
    assert counts(job_b) == (2, 0, 0, 0)  # never merged into org A's leads
    with tenant_scope(org):
        assert Lead.objects.count() == 2
        assert not ImportJob.objects.filter(pk=job_b.pk).exists()


def test_consent_opted_in_at_source_opts_in_every_row_with_the_file_as_origin(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    job = upload(org, admin, csv_bytes(PEOPLE), name="webinar-attendees.csv")
    start(job, django_capture_on_commit_callbacks, consent_basis="opted_in")
    with tenant_scope(org):
        leads = list(Lead.objects.all())
    assert len(leads) == 2
    assert all(lead.email_opt_in and lead.email_opt_in_at for lead in leads)
    assert {lead.email_opt_in_origin for lead in leads} == {"import: webinar-attendees.csv"}


def test_without_a_consent_basis_only_rows_whose_opt_in_column_says_yes_opt_in(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    data = csv_bytes(
        [
            ["Email", "Opt-in", "Do Not Call"],
            ["yes@acme-corp.com", "Yes", "No"],
            ["no@acme-corp.com", "No", "Yes"],
        ]
    )
    start(upload(org, admin, data), django_capture_on_commit_callbacks, consent_basis="none")
    with tenant_scope(org):
        yes = Lead.objects.get(email="yes@acme-corp.com")
        no = Lead.objects.get(email="no@acme-corp.com")
    assert yes.email_opt_in and yes.email_opt_in_origin == "import: leads.csv"
    assert not no.email_opt_in
    assert (yes.do_not_call, no.do_not_call) == (False, True)


def test_the_campaign_channel_is_the_source_when_no_column_gives_one(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    with tenant_scope(org):
        campaign = CampaignFactory(organization=org, channel="event", name="Expo 2026")
    data = csv_bytes(
        [["Email", "Lead Source"], ["a@acme-corp.com", ""], ["b@acme-corp.com", "LinkedIn"]]
    )
    start(upload(org, admin, data), django_capture_on_commit_callbacks, campaign=campaign)
    with tenant_scope(org):
        a = Lead.objects.get(email="a@acme-corp.com")
        b = Lead.objects.get(email="b@acme-corp.com")
        assert (a.first_source, a.first_campaign_id) == ("event", campaign.pk)
        assert (b.first_source, b.first_campaign_id) == ("social", campaign.pk)
        assert Activity.objects.filter(campaign=campaign).count() == 2


def test_rows_without_email_or_record_id_fail_and_are_reported(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    data = csv_bytes(
        [
            ["Email", "Record ID", "First Name"],
            ["ok@acme-corp.com", "", "Ok"],
            ["", "", "Nobody"],
            ["not-an-email", "", "Broken"],
            ["", "CRM-7", "Id Only"],
        ]
    )
    job = start(upload(org, admin, data), django_capture_on_commit_callbacks)
    assert counts(job) == (2, 0, 0, 2)
    rows = report_rows(job)
    assert rows[0] == ["Row", "Outcome", "Reasons", "Email", "Record ID", "First Name"]
    assert [r[:2] for r in rows[1:]] == [["3", "failed"], ["4", "failed"]]
    assert rows[1][2].startswith("No usable email address and no record ID")
    assert rows[1][3:] == ["", "", "Nobody"]
    assert "Invalid email address" in rows[2][2]
    with tenant_scope(org):
        assert Lead.objects.get(external_id="CRM-7").first_name == "Id Only"


def test_junk_rows_become_quarantined_leads_and_are_in_the_report(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    data = csv_bytes([["Email"], ["someone@mailinator.com"], ["real@acme-corp.com"]])
    job = start(upload(org, admin, data), django_capture_on_commit_callbacks)
    assert counts(job) == (1, 0, 1, 0)
    rows = report_rows(job)
    assert [r[:2] for r in rows[1:]] == [["2", "junk"]]
    with tenant_scope(org):
        assert Lead.objects.get(email="someone@mailinator.com").quality == "junk"


def test_ragged_rows_and_undecodable_bytes_fail_alone(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    data = (
        "Email,First Name,City\n"
        "ana@acme-corp.com,Ana,München\n"
        "short@acme-corp.com,Short\n"
        "long@acme-corp.com,Long,Paris,extra\n".encode()
        + b"bytes@acme-corp.com,Caf\xe9,Lyon\n"
        + "zoe@acme-corp.com,Zoë,Zürich\n".encode()
    )
    job = start(upload(org, admin, data), django_capture_on_commit_callbacks)
    assert counts(job) == (2, 0, 0, 3)
    rows = {r[0]: r for r in report_rows(job)[1:]}
    assert rows["3"][2] == "The row has 2 values but the header has 3 columns."
    assert rows["3"][3:] == ["short@acme-corp.com", "Short"]
    assert rows["4"][3:] == ["long@acme-corp.com", "Long", "Paris", "extra"]
    assert "aren't valid utf-8" in rows["5"][2]
    assert rows["5"][4] == "Caf\ufffd"
    with tenant_scope(org):
        assert set(Lead.objects.values_list("city", flat=True)) == {"München", "Zürich"}


def test_html_unicode_and_very_long_values_are_stored_as_text(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    long_value = "x" * 10_000
    data = csv_bytes(
        [
            ["Email", "First Name", "Last Name", "Company", "Notes"],
            [
                "script@acme-corp.com",
                "<script>alert(1)</script>",
                "O'Brien",
                "<b>Bold</b> & Co",
                long_value,
            ],
            ["unicode@acme-corp.com", "Žofia", "Nguyễn Thị", "北京公司", "🚀 launch"],
            ["long@acme-corp.com", long_value, "Long", "Acme", ""],
        ]
    )
    job = start(upload(org, admin, data), django_capture_on_commit_callbacks)
    assert job.failed_count == 0
    with tenant_scope(org):
        script = Lead.objects.get(email="script@acme-corp.com")
        unicode = Lead.objects.get(email="unicode@acme-corp.com")
        long = Lead.objects.get(email="long@acme-corp.com")
    assert script.first_name == "<script>alert(1)</script>"
    assert script.company_name == "<b>Bold</b> & Co"
    assert script.custom == {"notes": long_value}  # kept whole in the custom attributes
    assert (unicode.first_name, unicode.last_name, unicode.company_name) == (
        "Žofia",
        "Nguyễn Thị",
        "北京公司",
    )
    assert unicode.custom == {"notes": "🚀 launch"}
    # Too long for the column: cut to fit and flagged for review, never a failure.
    assert long.first_name.lower() == "x" * 150
    assert long.quality == "suspect"
    assert "value_too_long" in {r["code"] for r in long.quality_reasons}


def test_reimporting_the_same_file_merges(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    first = start(upload(org, admin, csv_bytes(PEOPLE)), django_capture_on_commit_callbacks)
    changed = [row[:] for row in PEOPLE]
    changed[1][3] = "Northwind Traders"
    second = start(upload(org, admin, csv_bytes(changed)), django_capture_on_commit_callbacks)
    assert counts(first) == (2, 0, 0, 0)
    assert counts(second) == (0, 2, 0, 0)
    with tenant_scope(org):
        assert Lead.objects.count() == 2
        ann = Lead.objects.get(email="ann.lee@northwind.com")
        assert ann.company_name == "Northwind Traders"  # newest non-empty value wins
        assert ann.activities.count() == 2  # one touch per import


def test_existing_leads_found_by_record_id_are_merged(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    with tenant_scope(org):
        lead = LeadFactory(organization=org, email="", external_id="P-1", first_name="Old")
    data = csv_bytes([["Prospect ID", "First Name"], ["P-1", "New"], ["P-2", "Other"]])
    job = start(upload(org, admin, data), django_capture_on_commit_callbacks)
    assert counts(job) == (1, 1, 0, 0)
    lead.refresh_from_db()
    assert lead.first_name == "New"


def test_running_a_finished_job_again_changes_nothing(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    job = start(upload(org, admin, csv_bytes(PEOPLE)), django_capture_on_commit_callbacks)
    tasks.import_job_run.delay(organization_id=org.pk, job_id=job.pk)
    tasks.import_job_run.delay(organization_id=org.pk, job_id=job.pk)
    with tenant_scope(org):
        again = ImportJob.objects.get(pk=job.pk)
        assert counts(again) == counts(job) == (2, 0, 0, 0)
        assert again.processed_rows == 2
        assert Activity.objects.count() == 2
        assert Lead.objects.count() == 2


def test_an_uploaded_job_does_not_run_before_it_is_started(org, other_org, admin):
    job = upload(org, admin, csv_bytes(PEOPLE))
    assert tasks.import_job_run.delay(organization_id=org.pk, job_id=job.pk).get() == "not_started"
    with tenant_scope(org):
        assert not Lead.objects.exists()
        assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.UPLOADED


def many_people(n: int) -> bytes:
    rows = [["Email", "First Name"]]
    for i in range(n):
        rows.append([f"person{i}@acme-corp.com" if i != 3 else "", f"Person{i}"])
    return csv_bytes(rows)


def test_a_crash_mid_way_resumes_after_the_last_committed_chunk(
    org, other_org, admin, monkeypatch, settings
):
    """Chunk 2 dies after writing its report part but before committing: the
    resumed run redoes chunk 2 only, and nothing is counted twice."""
    settings.LEADS_IMPORT_CHUNK_ROWS = 2
    job = upload(org, admin, many_people(6))  # row 5 (the 4th person) has no email
    with tenant_scope(org):
        services.import_job_start(job=job, mapping=job.mapping, campaign=None, consent_basis="none")
    real_write_part = services._write_part

    def crash_on_second_chunk(job_id, start, outcomes, *, sweep):
        real_write_part(job_id, start, outcomes, sweep=sweep)
        if start == 2:
            raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "_write_part", crash_on_second_chunk)
    with tenant_scope(org), pytest.raises(OperationalError):
        services.import_job_run(job_id=job.pk)
    with tenant_scope(org):
        job.refresh_from_db()
        assert (job.status, job.processed_rows, job.created_count) == ("running", 2, 2)
        assert Lead.objects.count() == 2 and Activity.objects.count() == 2

    monkeypatch.setattr(services, "_write_part", real_write_part)
    with tenant_scope(org):
        assert services.import_job_run(job_id=job.pk) == services.RunResult.DONE
        job.refresh_from_db()
        assert counts(job) == (5, 0, 0, 1)
        assert job.processed_rows == 6
        assert Lead.objects.count() == 5
        assert Activity.objects.count() == 5
    assert [r[0] for r in report_rows(job)[1:]] == ["5"]


def test_a_failed_job_can_be_resumed(
    org, other_org, admin, monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.LEADS_IMPORT_CHUNK_ROWS = 2
    real_commit = services._commit_chunk

    def disk_full_at_row_4(job, runner, start, *args, **kwargs):
        if start == 4:
            raise RuntimeError("No space left on device")
        return real_commit(job, runner, start, *args, **kwargs)

    monkeypatch.setattr(services, "_commit_chunk", disk_full_at_row_4)
    job = upload(org, admin, many_people(6))
    with pytest.raises(RuntimeError):
        start(job, django_capture_on_commit_callbacks)
    with tenant_scope(org):
        job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert job.error_message == "No space left on device"
    assert (job.processed_rows, job.created_count, job.failed_count) == (4, 3, 1)

    monkeypatch.setattr(services, "_commit_chunk", real_commit)
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        services.import_job_resume(job=job)
    with tenant_scope(org):
        job.refresh_from_db()
        assert job.status == ImportStatus.DONE
        assert job.error_message == ""
        assert counts(job) == (5, 0, 0, 1)
        assert Activity.objects.count() == 5


def test_a_chunk_that_fails_as_a_whole_is_retried_row_by_row(
    org, other_org, admin, monkeypatch, django_capture_on_commit_callbacks
):
    real_ingest = services.lead_ingest_batch

    def fails_on_poison(*, organization_id, rows, touch):
        if any(r.get("email") == "poison@acme-corp.com" for r in rows):
            raise ValueError("value out of range for the poison column")
        return real_ingest(organization_id=organization_id, rows=rows, touch=touch)

    monkeypatch.setattr(services, "lead_ingest_batch", fails_on_poison)
    data = csv_bytes(
        [["Email"], ["a@acme-corp.com"], ["poison@acme-corp.com"], ["b@acme-corp.com"]]
    )
    job = start(upload(org, admin, data), django_capture_on_commit_callbacks)
    assert counts(job) == (2, 0, 0, 1)
    assert report_rows(job)[1] == [
        "3",
        "failed",
        "Could not be imported: value out of range for the poison column",
        "poison@acme-corp.com",
    ]
    with tenant_scope(org):
        assert set(Lead.objects.values_list("email", flat=True)) == {
            "a@acme-corp.com",
            "b@acme-corp.com",
        }


def test_a_long_import_continues_in_a_new_task_when_its_time_budget_runs_out(
    org, other_org, admin, monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.LEADS_IMPORT_CHUNK_ROWS = 2
    monkeypatch.setattr(tasks, "TIME_BUDGET_SECONDS", 1e-9)
    runs = []
    real_run = services.import_job_run

    def counting_run(**kwargs):
        runs.append(kwargs)
        return real_run(**kwargs)

    monkeypatch.setattr(services, "import_job_run", counting_run)
    job = start(upload(org, admin, many_people(7)), django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.DONE
    assert counts(job) == (6, 0, 0, 1)
    assert len(runs) == 4  # one chunk of two rows per run


def test_formulas_in_the_error_report_are_neutralised(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    data = csv_bytes(
        [
            ["Email", "First Name"],
            ["", '=HYPERLINK("http://evil.example","x")'],
            ["", "+1+cmd|' /C calc'!A0"],
            ["", "+49 30 1234567"],
        ]
    )
    job = start(upload(org, admin, data), django_capture_on_commit_callbacks)
    rows = report_rows(job)
    assert rows[1][4] == '\'=HYPERLINK("http://evil.example","x")'
    assert rows[2][4] == "'+1+cmd|' /C calc'!A0"
    assert rows[3][4] == "+49 30 1234567"  # a number stays a number


def test_starting_needs_an_identity_column_and_happens_once(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    job = upload(org, admin, csv_bytes(PEOPLE))
    no_identity = {**job.mapping, "E-mail": ""}
    with (
        tenant_scope(org),
        pytest.raises(MappingError, match="Map a column to Email or to Record ID"),
    ):
        services.import_job_start(job=job, mapping=no_identity, campaign=None, consent_basis="none")
    start(job, django_capture_on_commit_callbacks)
    with tenant_scope(org), pytest.raises(services.ImportStateError, match="already been started"):
        services.import_job_start(job=job, mapping=job.mapping, campaign=None, consent_basis="none")


def test_a_campaign_of_another_org_is_refused(org, other_org, admin):
    job = upload(org, admin, csv_bytes(PEOPLE))
    with tenant_scope(other_org):
        foreign = CampaignFactory(organization=other_org)
    with tenant_scope(org), pytest.raises(services.ImportStateError, match="your campaigns"):
        services.import_job_start(
            job=job, mapping=job.mapping, campaign=foreign, consent_basis="none"
        )


def test_the_preview_shows_outcomes_and_writes_nothing(org, other_org, admin):
    with tenant_scope(org):
        LeadFactory(organization=org, email="ann.lee@northwind.com", first_name="Ann")
    job = upload(org, admin, csv_bytes([*PEOPLE, ["", "No", "Identity", "", "", "", ""]]))
    with tenant_scope(org):
        before = (Lead.objects.count(), Activity.objects.count())
        preview = services.import_preview(
            job=job, mapping=job.mapping, campaign=None, consent_basis="opted_in"
        )
        assert (Lead.objects.count(), Activity.objects.count()) == before
    assert [(r.number, r.outcome) for r in preview.rows] == [
        (2, "merged"),
        (3, "created"),
        (4, "failed"),
    ]
    bob = preview.rows[1].lead
    assert (bob["full_name"], bob["country"], bob["source"], bob["email_opt_in"]) == (
        "Bob Stone",
        "US",
        "Social",
        True,
    )
    assert bob["custom"] == {"total_visits": 2.5}
    assert preview.rows[2].reasons[0].startswith("No usable email address")
    assert preview.rows[2].original == [("First Name", "No"), ("Surname", "Identity")]
    assert preview.samples["Country"] == ["Germany", "United States"]


def test_the_preview_explains_an_unusable_mapping(org, other_org, admin):
    job = upload(org, admin, csv_bytes(PEOPLE))
    with tenant_scope(org):
        preview = services.import_preview(job=job, mapping={}, campaign=None, consent_basis="none")
    assert preview.rows == []
    assert "Map a column to Email or to Record ID" in preview.error
