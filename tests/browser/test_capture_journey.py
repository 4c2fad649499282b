"""A marketer builds a capture form; a visitor fills it in on the hosted page;
the lead shows up in the marketer's list, scored by the starter rules."""

import re

import pytest

from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from scoring.services import starter_rules_install
from tests.browser.playwright import login
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_build_form_visitor_submits_lead_appears(page, new_page, shot, org, marketer, settings,
                                                 live_server):  # fmt: skip
    settings.SITE_URL = live_server.url
    with tenant_scope(org):
        starter_rules_install(organization_id=org.pk)
    login(page, marketer.user.email, PASSWORD)
    page.goto(f"/o/{org.slug}/forms/")
    page.click("text=New form")
    page.fill("#id_name", "Book a demo")
    page.select_option("#id_activity_kind", "demo_request")
    page.fill("#id_min_fill_seconds", "1")
    page.click("input[type=submit][value='Create form']")
    page.wait_for_url(re.compile(r"/forms/\d+/$"))
    # Add a company field mapped to the lead's company name.
    page.click("text=Add field")
    page.fill("#id_label", "Company")
    page.fill("#id_key", "company")
    page.select_option("#id_maps_to", "company_name")
    page.click("button:has-text('Add field')")
    page.wait_for_url(re.compile(r"/forms/\d+/$"))
    shot(page, "form-builder")
    hosted = page.input_value("#hosted-link")

    # A visitor fills in the hosted form.
    visitor = new_page()
    visitor.goto(hosted + "?utm_source=google&utm_campaign=q4-search")
    shot(visitor, "hosted-form")
    visitor.fill("input[name=email]", "Dana.Scully@FBI-Field.org")
    visitor.fill("input[name=first_name]", "dana")
    visitor.fill("input[name=last_name]", "scully")
    visitor.fill("input[name=company]", "FBI Field Office")
    visitor.wait_for_timeout(1200)  # humans take longer than the minimum fill time
    visitor.click("button[type=submit]")
    visitor.wait_for_selector("text=Thank you")

    # The marketer finds the lead, scored (demo request +50) with its timeline.
    page.goto(f"/o/{org.slug}/leads/?q=scully")
    page.click("text=Dana Scully")
    page.wait_for_url(re.compile(r"/leads/\d+/$"))
    shot(page, "lead-detail")
    assert "FBI Field Office" in page.content()
    assert page.locator("[data-testid=timeline]").inner_text().count("Demo request") >= 1
    assert int(page.inner_text("[data-testid=score-total]")) >= 50
    with tenant_scope(org):
        lead = Lead.objects.get(email="dana.scully@fbi-field.org")
    assert (lead.first_name, lead.last_name) == ("Dana", "Scully")
    assert lead.score >= 50
