"""An admin finds an import whose worker died, reads that it stalled, and
resumes it from its page (Playwright on the system's Chromium)."""

from __future__ import annotations

import pytest

from leadflow.core.tenancy import tenant_scope
from leads.models import ImportJob, Lead
from tests.browser.playwright import login
from tests.factories import PASSWORD
from tests.reliability.test_import_recovery import age, killed_mid_way

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_sees_a_stalled_import_and_resumes_it(
    page, shot, org, other_org, admin, monkeypatch, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LEADS_IMPORT_CHUNK_ROWS = 2
    settings.LEADS_IMPORT_STALE_SECONDS = 60
    job = killed_mid_way(org, admin, monkeypatch)
    age(job, heartbeat_at=600, queued_at=600)

    login(page, admin.user.email, PASSWORD)
    page.goto(f"/o/{org.slug}/imports/{job.pk}/")
    note = page.locator("[data-testid=import-stalled-note]")
    assert "No progress since 10" in note.inner_text()
    assert "after the last row saved (2)" in note.inner_text()
    assert page.locator("[data-testid=import-stalled]").inner_text() == "Stalled — resuming"
    shot(page, "import-stalled")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "import-stalled-phone")
    # The progress card fits a phone (the top navigation bar is not this page's).
    card = page.locator("#import-progress").bounding_box()
    assert card["x"] + card["width"] <= 390

    page.click("button[name=action][value=resume]")
    page.wait_for_selector("[data-testid=import-progress] >> text=Done")
    with tenant_scope(org):
        job = ImportJob.objects.get(pk=job.pk)
        assert (job.status, job.created_count, job.failed_count) == ("done", 5, 1)
        assert Lead.objects.count() == 5
