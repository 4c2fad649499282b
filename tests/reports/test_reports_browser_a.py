"""A marketer opens the marketing dashboard, the source report and the funnel
report in Chromium: the charts draw, the filters apply, the CSV link downloads.
Screenshots go to test-artifacts/ (reports-marketing.png, …)."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from leads.models import Channel, Lead
from pipeline.models import Assignment, Opportunity, StageTransition
from tests import factories as f
from tests.browser.playwright import login
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PERIOD = "start=2026-03-01&end=2026-03-31&grain=day"
CHANNELS = [
    Channel.PAID_SEARCH,
    Channel.WEBINAR,
    Channel.ORGANIC_SEARCH,
    Channel.PAID_SOCIAL,
    Channel.PURCHASED_LIST,
    Channel.REFERRAL,
]
PATH = ["mql", "sal", "sql", "opportunity", "won"]


def populate(org, rep):
    """Three months of leads over six channels, with stage history and assignments."""
    rnd = random.Random(7)
    campaigns = {
        ch: f.CampaignFactory(organization=org, name=name, channel=ch, cost=cost)
        for ch, name, cost in [
            (Channel.PAID_SEARCH, "Search ads Q1", 4200),
            (Channel.WEBINAR, "Pipeline webinar", 1800),
            (Channel.PAID_SOCIAL, "LinkedIn sponsored", 3600),
            (Channel.PURCHASED_LIST, "Trade list 2026", 2500),
        ]
    }
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with tenant_scope(org):
        leads, history, assignments = [], [], []
        for i in range(420):
            channel = rnd.choices(CHANNELS, weights=[5, 3, 4, 2, 3, 1])[0]
            created = start + dt.timedelta(days=rnd.random() * 90 * (0.6 + 0.4 * rnd.random()))
            junk = channel == Channel.PURCHASED_LIST and rnd.random() < 0.45
            leads.append(
                Lead(
                    organization=org,
                    email=f"p{i}@demo.example",
                    first_source=channel,
                    first_campaign=campaigns.get(channel),
                    owner=rep,
                    quality="junk" if junk else "ok",
                )
            )
        Lead.objects.bulk_create(leads)
        for lead in leads:
            created = start + dt.timedelta(days=rnd.random() * 89, hours=rnd.random() * 10)
            Lead.objects.filter(pk=lead.pk).update(created_at=created)
            depth = (
                0 if lead.quality == "junk" else rnd.choices(range(6), [30, 25, 15, 12, 8, 10])[0]
            )
            when = created
            lead.stage = PATH[depth - 1] if depth else "new"
            for stage in PATH[:depth]:
                when += dt.timedelta(hours=rnd.expovariate(1 / 30))
                history.append(
                    StageTransition(organization=org, lead=lead, to_stage=stage, occurred_at=when)
                )
            if depth >= 1:
                mql_at = created + dt.timedelta(minutes=1)
                assigned = mql_at + dt.timedelta(minutes=rnd.expovariate(1 / 4))
                touched = assigned + dt.timedelta(minutes=rnd.expovariate(1 / 25))
                assignments.append(
                    Assignment(
                        organization=org,
                        lead=lead,
                        membership=rep,
                        method="round_robin",
                        assigned_at=assigned,
                        first_touched_at=touched,
                        breached_at=touched if rnd.random() < 0.15 else None,
                    )
                )
        Lead.objects.bulk_update(leads, ["stage"])
        Opportunity.objects.bulk_create(
            Opportunity(
                organization=org,
                lead=lead,
                name=f"Deal {lead.pk}",
                currency="USD",
                amount=rnd.choice([4000, 6500, 9000, 15000]),
                status="won",
            )
            for lead in leads
            if lead.stage == "won"
        )
        StageTransition.objects.bulk_create(history)
        Assignment.objects.bulk_create(assignments)


def test_marketer_reads_the_reports(page, shot, org, other_org, make_member):
    marketer = make_member(org, Role.MARKETER, email="mara@acme.example")
    rep = make_member(org, Role.SALES_REP, email="sam@acme.example")
    populate(org, rep)
    f.CampaignFactory(organization=other_org, name="Globex secret campaign")
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, marketer.user.email, PASSWORD)

    page.goto(f"/o/{org.slug}/reports/?{PERIOD}")
    page.wait_for_selector("[data-testid=chart-volume] canvas[data-drawn]")
    assert page.locator("canvas[data-drawn]").count() == 4
    assert "Globex secret campaign" not in page.content()
    assert errors == []
    shot(page, "reports-marketing")

    # Filter by a campaign through the form, then by week.
    page.select_option("#rf-campaign", label="Search ads Q1")
    page.select_option("#rf-grain", "week")
    page.click("text=Apply")
    page.wait_for_selector("[data-testid=chart-volume] canvas[data-drawn]")
    assert "grain=week" in page.url and "campaign=" in page.url

    with page.expect_download() as download:
        page.click("[data-testid=csv-volume]")
    assert download.value.suggested_filename.startswith("marketing-volume-")

    page.goto(f"/o/{org.slug}/reports/sources/?{PERIOD}")
    page.wait_for_selector("[data-testid=chart-sources] canvas[data-drawn]")
    assert "Consider gating" in page.content()
    shot(page, "reports-sources")

    page.goto(f"/o/{org.slug}/reports/funnel/?{PERIOD}&grain=week")
    page.wait_for_selector("[data-testid=chart-stages] canvas[data-drawn]")
    shot(page, "reports-funnel")

    page.goto(f"/o/{org.slug}/reports/?start=2026-03-31&end=2026-03-01")
    assert "after it ends" in page.inner_text("[data-testid=report-error]")
    shot(page, "reports-bad-input")
