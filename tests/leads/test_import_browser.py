"""A marketer imports an Excel-style CSV: upload, adjust the mapping with a live
preview, start, and read the results (Playwright on the system's Chromium)."""

from __future__ import annotations

import re

import pytest

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from leads.models import ImportJob, Lead
from tests.browser.playwright import login
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Excel in Germany: cp1252, semicolons.
FILE = (
    "E-Mail;Vorname;Nachname;Firma;Land;Lead Source;Visits\r\n"
    "jörg.müller@brauerei-beispiel.de;Jörg;Müller;Brauerei Beispiel;Deutschland;Google;7\r\n"
    "anna@kaffee-roesterei.de;Anna;Schäfer;Kaffee Rösterei;Germany;LinkedIn;2\r\n"
    ";Ohne;Adresse;;;;\r\n"
).encode("cp1252")


def test_marketer_imports_a_csv_with_a_live_preview(
    page,
    shot,
    org,
    other_org,
    make_member,
    settings,
    tmp_path,
):
    settings.MEDIA_ROOT = tmp_path / "media"
    member = make_member(org, Role.MARKETER, email="mia@acme.example")
    upload = tmp_path / "Messe Leads.csv"
    upload.write_bytes(FILE)

    login(page, member.user.email, PASSWORD)
    page.goto(f"/o/{org.slug}/")
    page.click(".sidebar >> text=Imports")
    # The click starts a navigation; wait for it, or content() can read a blank page.
    page.wait_for_url(f"**/o/{org.slug}/imports/")
    page.wait_for_selector("text=No imports yet")
    page.set_input_files("input[type=file]", str(upload))
    page.click("input[type=submit][value='Upload and map columns']")
    page.wait_for_url(re.compile(r"/imports/\d+/$"))
    assert "3 rows found" in page.content()
    assert "cp1252, semicolon-separated" in page.content()

    # Suggested: E-Mail -> Email, Lead Source -> source, Visits -> a custom attribute.
    assert page.input_value("#id_col_0") == "email"
    assert page.input_value("#id_col_5") == "source"
    preview = page.locator("#import-preview")
    assert "Jörg Müller" in preview.inner_text()
    assert "visits: 7" in preview.inner_text()
    shot(page, "import-mapping")

    # Changing a select refreshes the preview in place (htmx). (A function, not an
    # expression: Playwright evals expressions, which the page's CSP forbids.)
    page.select_option("#id_col_6", "")
    page.wait_for_function(
        "() => !document.querySelector('#import-preview').innerText.includes('visits: 7')"
    )
    page.check("input[name=consent_basis][value=opted_in]")
    page.wait_for_selector("#import-preview >> text=Opted in")

    page.click("button[name=action][value=start]")
    page.wait_for_selector("[data-testid=import-progress] >> text=Done")
    shot(page, "import-done")
    counts = page.locator("[data-testid=import-counts]").inner_text()
    assert re.search(r"Created\s+2", counts, re.I) and re.search(r"Failed\s+1", counts, re.I)
    assert page.locator("[data-testid=error-report-link]").count() == 1

    with tenant_scope(org):
        job = ImportJob.objects.get()
        lead = Lead.objects.get(email="jörg.müller@brauerei-beispiel.de")
    assert (job.status, job.original_name) == ("done", "Messe Leads.csv")
    assert (lead.first_name, lead.country, lead.first_source) == ("Jörg", "DE", "organic_search")
    assert lead.custom == {} and lead.email_opt_in

    page.click("text=All imports")
    assert "Messe Leads.csv" in page.locator("[data-testid=import-jobs]").inner_text()
    shot(page, "import-list")
