"""End to end on the real shared dataset: 9,237 leads of an education company,
identified by "Prospect ID" (no emails). Runs in the normal suite (~10 s)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, ImportJob, Lead
from tests.leads.test_import_jobs import start, upload

DATASET = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "x-education-leads.csv"

pytestmark = pytest.mark.skipif(not DATASET.exists(), reason="the shared dataset is not here")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_the_x_education_file_imports_end_to_end(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    data = DATASET.read_bytes()
    with DATASET.open(encoding="utf-8") as fh:
        source_rows = list(csv.DictReader(fh))
    job = upload(org, admin, data, name="x-education-leads.csv")
    assert (job.encoding, job.delimiter, job.total_rows) == ("utf-8", ",", 9237)
    suggested = job.mapping
    assert suggested["Prospect ID"] == "external_id"
    assert suggested["Lead Source"] == "source"
    assert suggested["Do Not Email"] == "do_not_email"
    assert suggested["Do Not Call"] == "do_not_call"
    assert (suggested["Country"], suggested["City"]) == ("country", "city")
    assert suggested["TotalVisits"] == "custom:total_visits"
    assert suggested["Converted"] == "custom:converted"
    assert suggested["Lead Origin"] == "custom:lead_origin"
    assert suggested["Tags"] == "custom:tags"
    assert suggested["Lead Number"] == "custom:lead_number"

    job = start(job, django_capture_on_commit_callbacks)
    assert job.status == "done"
    assert (job.created_count, job.merged_count, job.failed_count) == (9237, 0, 0)
    assert job.processed_rows == 9237

    with tenant_scope(org):
        assert Lead.objects.count() == 9237
        assert Activity.objects.filter(kind="import").count() == 9237
        first = Lead.objects.get(external_id="7927b2df-8bba-4d29-b9a2-b6e0beafe620")
        assert first.email == ""
        assert (first.first_source, first.country, first.city) == ("direct", "", "")  # Olark Chat
        assert first.custom["lead_origin"] == "API"
        assert first.custom["tags"] == "Interested in other courses"
        assert first.custom["converted"] == 0 and first.custom["total_visits"] == 0
        assert "specialization" not in first.custom  # "Select" = not answered
        third = Lead.objects.get(external_id="8cc8c611-a219-4f35-ad23-fdfd2656bd8a")
        assert (third.country, third.city, third.first_source) == ("IN", "Mumbai", "direct")
        assert third.custom["total_time_spent_on_website"] == 1532
        assert third.custom["converted"] == 1
        assert (
            Lead.objects.get(external_id="2a272436-5132-4136-86fa-dcc88c88f482").custom[
                "page_views_per_visit"
            ]
            == 2.5
        )
        # Numbers are stored as numbers: the database can compare them.
        converted = sum(r["Converted"] == "1" for r in source_rows)
        assert Lead.objects.filter(custom__converted=1).count() == converted == 3559
        many_visits = sum(
            r["TotalVisits"] not in ("", "NA") and float(r["TotalVisits"]) >= 10
            for r in source_rows
        )
        assert Lead.objects.filter(custom__total_visits__gte=10).count() == many_visits
        assert Lead.objects.filter(do_not_email=True).count() == 734
        # Google 2,867 + Organic Search 1,153 + bing 6 + google 5
        assert Lead.objects.filter(first_source="organic_search").count() == 4031
    with tenant_scope(other_org):
        assert not Lead.objects.exists()

    # The same file again merges into the same leads. (A slice of it: merging
    # the whole file costs ~100 s on SQLite in the engine's bulk_update.)
    head = b"".join(data.splitlines(keepends=True)[:101])
    again = start(
        upload(org, admin, head, name="x-education-leads.csv"), django_capture_on_commit_callbacks
    )
    assert (again.created_count, again.merged_count, again.failed_count) == (0, 100, 0)
    with tenant_scope(org):
        assert Lead.objects.count() == 9237
        assert ImportJob.objects.count() == 2
