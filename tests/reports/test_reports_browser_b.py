"""An admin opens the sales dashboard, the attribution report (switching the model)
and the scoring health report in Chromium; a sales rep opens the sales dashboard
and sees only their team. Screenshots go to test-artifacts/ (reports-sales.png, …)."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, Campaign, Lead
from pipeline.models import Assignment, Opportunity, StageTransition
from tests import factories as f
from tests.browser.playwright import login
from tests.factories import PASSWORD
from tests.reports.test_reports_browser_a import PERIOD, populate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEPTH = {"new": 0, "mql": 1, "sal": 2, "sql": 3, "opportunity": 4, "won": 5}
TITLES = ["VP Marketing", "Head of Growth", "Marketing Manager", "Intern", "CEO", ""]


def enrich(org, reps):
    """On top of the A dataset: deals closed with campaign touches, the leads spread over
    three reps in two teams with accepts, and scores that (noisily) predict winning."""
    rnd = random.Random(11)
    north, south = (
        f.TeamFactory(organization=org, name="North"),
        f.TeamFactory(organization=org, name="South"),
    )
    for rep, team, cap in zip(reps, (north, north, south), (40, 25, 30), strict=True):
        f.TeamMemberFactory(team=team, membership=rep, capacity=cap)
    with tenant_scope(org):
        f.ScoringRuleFactory(organization=org, name="Title has VP", value="vp", points=15)
        f.ScoringRuleFactory(
            organization=org, name="Interns", value="intern", points=10
        )  # points the wrong way: the page flags it
        f.ScoringRuleFactory(
            organization=org, name="Two page views", kind="engagement", field="", operator="",
            activity_kinds=["page_view"], min_count=2, points=5,
        )  # fmt: skip
        campaigns = list(Campaign.objects.all())
        leads = list(Lead.objects.order_by("pk"))
        won_at = dict(
            StageTransition.objects.filter(to_stage="won").values_list("lead_id", "occurred_at")
        )
        opp_at = dict(
            StageTransition.objects.filter(to_stage="opportunity").values_list(
                "lead_id", "occurred_at"
            )
        )
        activities = []
        for lead in leads:
            depth = DEPTH[lead.stage]
            lead.owner = rnd.choices(reps, [5, 3, 3])[0]
            lead.title = rnd.choice(TITLES[:2] if depth >= 4 else TITLES)
            lead.score = max(0, int(rnd.gauss(15 + 12 * depth, 14)))
            lead.band = "hot" if lead.score >= 60 else "warm" if lead.score >= 30 else "cold"
            lead.grade = "ABCD"[min(3, max(0, 4 - depth + rnd.randint(-1, 1)))]
            end = won_at.get(lead.pk, lead.created_at + dt.timedelta(days=20))
            if lead.first_campaign_id:
                activities.append(
                    Activity(organization=org, lead=lead, kind="form_submit",
                             campaign_id=lead.first_campaign_id, occurred_at=lead.created_at)
                )  # fmt: skip
            for _ in range(rnd.randint(0, 3)):
                activities.append(
                    Activity(
                        organization=org,
                        lead=lead,
                        kind=rnd.choice(["page_view", "email_click", "webinar"]),
                        campaign=rnd.choice([*campaigns, None]),
                        occurred_at=lead.created_at + (end - lead.created_at) * rnd.random(),
                    )
                )
        Lead.objects.bulk_update(leads, ["owner", "title", "score", "band", "grade"])
        Activity.objects.bulk_create(activities)
        by_lead = {lead.pk: lead for lead in leads}
        assignments = list(Assignment.objects.all())
        for a in assignments:
            lead = by_lead[a.lead_id]
            a.membership = lead.owner
            a.first_touch_due_at = a.assigned_at + dt.timedelta(minutes=5)
            if DEPTH[lead.stage] >= 2 or rnd.random() < 0.3:
                a.accept_due_at = a.assigned_at + dt.timedelta(hours=4)
                a.accepted_at = a.assigned_at + dt.timedelta(minutes=rnd.expovariate(1 / 60))
        Assignment.objects.bulk_update(
            assignments, ["membership", "first_touch_due_at", "accept_due_at", "accepted_at"]
        )
        opps = list(Opportunity.objects.all())
        for opp in opps:
            opp.closed_at = won_at[opp.lead_id]
            opp.owner = by_lead[opp.lead_id].owner
        Opportunity.objects.bulk_update(opps, ["closed_at", "owner"])
        for opp in opps:  # created_at is auto_now_add: set it afterwards
            Opportunity.objects.filter(pk=opp.pk).update(created_at=opp_at[opp.lead_id])


def drawn(page, slug):
    page.wait_for_selector(f"[data-testid=chart-{slug}] canvas[data-drawn]")


def test_admin_and_rep_read_sales_attribution_scoring(
    page, new_page, shot, org, other_org, make_member
):
    admin = make_member(org, Role.ADMIN, email="ada@acme.example", full_name="Ada Lovelace")
    reps = [
        make_member(org, Role.SALES_REP, email=f"{n.split()[0].lower()}@acme.example", full_name=n)
        for n in ("Sam Carter", "Rita Moreno", "Omar Haddad")
    ]
    populate(org, reps[0])
    enrich(org, reps)
    f.CampaignFactory(organization=other_org, name="Globex secret campaign")
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, admin.user.email, PASSWORD)

    page.goto(f"/o/{org.slug}/reports/sales/?{PERIOD}")
    for slug in ("rep-activity", "mql-flow", "rep-load"):
        drawn(page, slug)
    assert page.locator("[data-testid=bubble-warning]").is_visible()
    table = page.inner_text("[data-testid=chart-rep-activity]")
    assert all(name in table for name in ("Sam", "Rita", "Omar"))
    assert "North" in page.inner_text("[data-testid=chart-teams]")
    shot(page, "reports-sales")

    page.goto(f"/o/{org.slug}/reports/attribution/?{PERIOD}")
    drawn(page, "attributed-revenue")
    drawn(page, "model-comparison")
    assert "Globex secret campaign" not in page.content()
    first = page.inner_text("[data-testid=chart-attributed-revenue] table")
    shot(page, "reports-attribution")
    assert "W-shaped" in page.inner_text("[data-testid=model-switch] [aria-current=true]")
    page.click("[data-testid=model-switch] >> text=First touch")
    page.wait_for_url("**model=first_touch**")
    drawn(page, "attributed-revenue")
    assert "First touch" in page.inner_text("[data-testid=model-switch] [aria-current=true]")
    assert page.inner_text("[data-testid=chart-attributed-revenue] table") != first
    shot(page, "reports-attribution-first-touch")

    page.goto(f"/o/{org.slug}/reports/scoring/?{PERIOD}")
    for slug in ("bands", "grades", "deciles"):
        drawn(page, slug)
    assert page.inner_text("[data-testid=auc]") not in ("", "—")
    assert "Review" in page.inner_text("[data-testid=chart-rules]")  # the intern rule
    shot(page, "reports-scoring")

    # An empty period: every page explains itself instead of drawing blanks.
    page.goto(f"/o/{org.slug}/reports/scoring/?start=2025-06-01&end=2025-06-30")
    assert "No leads arrived" in page.content()
    page.goto(f"/o/{org.slug}/reports/attribution/?start=2025-06-01&end=2025-06-30")
    assert "No deals won" in page.content()
    shot(page, "reports-attribution-empty")
    page.goto(f"/o/{org.slug}/reports/sales/?start=2025-06-01&end=2025-06-30")
    assert "No MQLs arrived" in page.inner_text("[data-testid=bubble-ok]")
    shot(page, "reports-sales-empty")
    assert errors == []

    # Rita (North, with Sam) sees North's numbers only.
    rep_page = new_page()
    login(rep_page, reps[1].user.email, PASSWORD)
    rep_page.goto(f"/o/{org.slug}/reports/sales/?{PERIOD}")
    drawn(rep_page, "rep-activity")
    table = rep_page.inner_text("[data-testid=chart-rep-activity]")
    assert "Sam" in table and "Rita" in table and "Omar" not in table
    assert "South" not in rep_page.inner_text("[data-testid=chart-teams]")
    shot(rep_page, "reports-sales-rep")
