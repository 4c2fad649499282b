"""An admin tunes lead scoring in a real browser: the live simulation answers
while the rule is typed, saving queues a rescore with a progress bar, and a
rule is switched off in place."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from leads.models import ActivityKind
from scoring import engine, services
from scoring.models import ScoringRule
from tests.browser.playwright import login
from tests.factories import PASSWORD, ActivityFactory, LeadFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TITLES = ["VP Marketing", "Director of Sales", "Intern", "CEO", "Head of Growth", "Engineer"]


@pytest.fixture
def scored_org(org, other_org):
    now = timezone.now()
    with tenant_scope(org):
        services.starter_rules_install(organization_id=org.pk)
        for i in range(36):
            lead = LeadFactory(organization=org, title=TITLES[i % len(TITLES)])
            for j in range(i % 5):
                ActivityFactory(
                    lead=lead,
                    kind=ActivityKind.PAGE_VIEW,
                    occurred_at=now - dt.timedelta(days=j),
                    properties={"url": "/pricing" if j % 2 else "/blog"},
                )
            if i % 4 == 0:
                ActivityFactory(lead=lead, kind=ActivityKind.DEMO_REQUEST, occurred_at=now)
        engine.rescore(organization_id=org.pk)
    return org


def test_admin_adds_a_rule_with_its_simulation(page, shot, scored_org, make_member):
    admin = make_member(scored_org, Role.ADMIN, email="ada@acme.example")
    login(page, admin.user.email, PASSWORD)
    page.goto(f"/o/{scored_org.slug}/scoring/")
    page.wait_for_selector("canvas[data-drawn]")
    shot(page, "scoring-rules")

    page.click("text=Add rule")
    page.click("text=Fit rule")
    page.select_option("#id_field", "title")
    page.select_option("#id_operator", "contains")
    page.fill("#id_value", "director")
    page.fill("#id_points", "60")
    page.wait_for_selector("[data-testid=sim-matches]")
    assert page.inner_text("[data-testid=sim-matches]") == "6"
    page.wait_for_selector("#rule-simulation canvas[data-drawn]")
    shot(page, "scoring-rule-simulation")

    page.click("button[value=save]")
    page.wait_for_url(re.compile(r"/scoring/$"))
    page.wait_for_selector("text=Scores are up to date")
    assert "saved" in page.inner_text(".messages")
    with tenant_scope(scored_org):
        rule = ScoringRule.objects.get(field="title", value="director")
    row = page.locator(f"#rule-{rule.pk}")
    assert row.locator("td").nth(3).inner_text() == "6"

    # Switch it off in place: the row swaps, the rule is off in the database.
    row.locator("button[type=submit]").click()
    page.wait_for_selector(f"#rule-{rule.pk} .bi-toggle-off")
    with tenant_scope(scored_org):
        rule.refresh_from_db()
    assert rule.is_active is False
    shot(page, "scoring-rules-after")


def test_admin_opens_the_engagement_form_and_settings(page, shot, scored_org, make_member):
    admin = make_member(scored_org, Role.ADMIN, email="ada@acme.example")
    login(page, admin.user.email, PASSWORD)
    page.goto(f"/o/{scored_org.slug}/scoring/rules/new/?kind=engagement")
    page.check("input[name=activity_kinds][value=page_view]")
    page.fill("#id_property_key", "url")
    page.select_option("#id_property_operator", "contains")
    page.fill("#id_property_value", "/pricing")
    page.fill("#id_points", "5")
    page.wait_for_selector("[data-testid=sim-matches]")
    shot(page, "scoring-engagement-rule")
    page.goto(f"/o/{scored_org.slug}/scoring/settings/")
    page.fill("#id_mql_threshold", "60")
    page.fill("#id_grade_b", "45")  # above A: refused with a message
    page.click("text=Save settings")
    page.wait_for_selector("text=Grade bands must go down from A to D")
    shot(page, "scoring-settings")
    page.fill("#id_grade_b", "25")
    page.click("text=Save settings")
    page.wait_for_selector("text=Scoring settings saved")
    page.click("text=Change log")
    page.wait_for_selector("text=Scoring settings")
    assert "MQL threshold" in page.inner_text("[data-testid=change-list]")
    shot(page, "scoring-change-log")
