"""Funnel, velocity and cost selectors against hand-computed values on a small
fixed dataset (skipped, repeated and recycled stages; an empty period), plus the
funnel & velocity page."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from leads.models import Channel, Lead
from pipeline.models import StageTransition
from reports.period import parse_report_query
from reports.selectors.cost import campaign_economics
from reports.selectors.funnel import funnel_total
from reports.selectors.velocity import speed_to_lead, time_in_stage
from reports.selectors.volume import mql_months
from tests import factories as f

UTC = dt.UTC
MARCH = {"start": "2026-03-01", "end": "2026-03-31", "grain": "week"}
H = 3600


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


def make_lead(org, created, *, source="", campaign=None, quality="ok", stages=(), stage="new"):
    """A lead created at `created` with its stage history [(to_stage, at), ...]."""
    lead = f.LeadFactory(
        organization=org,
        first_source=source,
        first_campaign=campaign,
        quality=quality,
        stage=stages[-1][0] if stages else stage,
    )
    Lead.objects.filter(pk=lead.pk).update(created_at=created)
    lead.created_at = created
    previous = ""
    for to_stage, when in stages:
        StageTransition.objects.create(
            organization=org, lead=lead, from_stage=previous, to_stage=to_stage, occurred_at=when
        )
        previous = to_stage
    return lead


def build_dataset(org):
    """The fixed dataset every hand-computed number below comes from (see the module doc
    of each selector for the definitions)."""
    webinar = f.CampaignFactory(
        organization=org, name="Spring webinar", channel=Channel.WEBINAR, cost=1000
    )
    ads = f.CampaignFactory(
        organization=org, name="Search ads", channel=Channel.PAID_SEARCH, cost=500
    )
    team = f.TeamFactory(organization=org, name="EMEA")
    rep_a = f.TeamMemberFactory(team=team).membership
    rep_b = f.MembershipFactory(organization=org, role="sales_rep")
    with tenant_scope(org):
        l1 = make_lead(
            org,
            at(3, 1),
            source=Channel.WEBINAR,
            campaign=webinar,
            stages=[
                ("mql", at(3, 2)),
                ("sal", at(3, 2, 11)),
                ("sql", at(3, 5)),
                ("opportunity", at(3, 10)),
                ("won", at(3, 20)),
            ],
        )
        f.OpportunityFactory(lead=l1, amount=3000, status="won")
        # Skips MQL and SAL (an imported SQL): both count as passed.
        make_lead(
            org, at(3, 2), source=Channel.WEBINAR, campaign=webinar, stages=[("sql", at(3, 3))]
        )
        # MQL, recycled, MQL again (counted once), then accepted.
        l3 = make_lead(
            org,
            at(3, 3),
            source=Channel.PAID_SEARCH,
            campaign=ads,
            stages=[
                ("mql", at(3, 4)),
                ("recycled", at(3, 6)),
                ("mql", at(3, 8)),
                ("sal", at(3, 9)),
            ],
        )
        make_lead(org, at(3, 4), source=Channel.PAID_SEARCH, campaign=ads, quality="junk")
        l5 = make_lead(
            org,
            at(3, 5, 9),
            source=Channel.PAID_SEARCH,
            campaign=ads,
            stages=[
                ("mql", at(3, 5)),
                ("sal", at(3, 5, 12)),
                ("sql", at(3, 6)),
                ("opportunity", at(3, 7)),
                ("lost", at(3, 25)),
            ],
        )
        make_lead(org, at(3, 31, 23, 59), source=Channel.ORGANIC_SEARCH)
        # Arrived in February (the previous period), qualified in March.
        make_lead(
            org, at(2, 20), source=Channel.WEBINAR, campaign=webinar, stages=[("mql", at(3, 3))]
        )
        make_lead(org, at(4, 1), source=Channel.ORGANIC_SEARCH)  # after the period
        make_lead(org, at(1, 15), stages=[("mql", at(2, 10))])  # February's one MQL
        f.AssignmentFactory(
            lead=l1,
            membership=rep_a,
            team=team,
            assigned_at=at(3, 2, 10, 3),
            first_touched_at=at(3, 2, 10, 13),
        )
        f.AssignmentFactory(
            lead=l5,
            membership=rep_b,
            assigned_at=at(3, 5, 10, 30),
            first_touched_at=at(3, 5, 12),
            breached_at=at(3, 5, 11),
        )
        f.AssignmentFactory(lead=l3, membership=rep_a, team=team, assigned_at=at(3, 8))
    return {"webinar": webinar, "ads": ads, "team": team, "rep_a": rep_a, "rep_b": rep_b}


def build_noise(other_org):
    """Another tenant with busy March numbers: none may leak into org's reports."""
    campaign = f.CampaignFactory(organization=other_org, cost=99999)
    with tenant_scope(other_org):
        for i in range(3):
            lead = make_lead(
                other_org,
                at(3, 10 + i),
                source=Channel.WEBINAR,
                campaign=campaign,
                stages=[
                    ("mql", at(3, 15)),
                    ("sal", at(3, 16)),
                    ("sql", at(3, 17)),
                    ("opportunity", at(3, 18)),
                    ("won", at(3, 19)),
                ],
            )
            f.OpportunityFactory(lead=lead, amount=50000, status="won")
    return campaign


def march(org, **extra):
    return parse_report_query({**MARCH, **extra}, organization=org, today=dt.date(2026, 6, 1))


@pytest.fixture
def data(org, other_org):
    built = build_dataset(org)
    build_noise(other_org)
    return built


def test_cohort_funnel_counts_skipped_repeated_and_recycled_stages(org, data):
    with tenant_scope(org):
        counts = funnel_total(march(org))
        before = funnel_total(march(org).previous)
    # L1..L6 arrived in March; L2 skipped MQL/SAL, L3 was MQL twice and recycled.
    assert counts.leads == 6
    assert counts.reached == [6, 4, 4, 3, 2, 1]
    assert (counts.won, counts.lost, counts.junk) == (1, 1, 1)
    assert counts.win_rate == pytest.approx(0.5)
    assert counts.mql_rate == pytest.approx(4 / 6)
    steps = counts.steps()
    assert steps[3]["step_rate"] == pytest.approx(3 / 4)  # SAL → SQL
    assert steps[5]["overall_rate"] == pytest.approx(1 / 6)
    # February's lead qualified in March: it credits February's cohort.
    assert (before.leads, before.mql) == (1, 1)


def test_empty_period_has_no_rates(org, data):
    with tenant_scope(org):
        empty = funnel_total(
            parse_report_query(
                {"start": "2025-01-01", "end": "2025-01-31"},
                organization=org,
                today=dt.date(2026, 6, 1),
            )
        )
        economics = campaign_economics(
            parse_report_query(
                {"start": "2025-01-01", "end": "2025-01-31"},
                organization=org,
                today=dt.date(2026, 6, 1),
            )
        )
    assert empty.leads == 0
    assert (empty.mql_rate, empty.win_rate, empty.lead_to_won) == (None, None, None)
    free = f.CampaignFactory(organization=org, cost=0, name="Free")
    with tenant_scope(org):
        row = next(r for r in campaign_economics(march(org))["campaigns"] if r["label"] == "Free")
    assert (row["cpl"], row["cpa"], row["roi"]) == (None, None, None)
    assert free.pk == row["campaign_id"]
    assert economics["total"]["leads"] == 9 - 3  # lifetime: the campaigns' 6 leads


def test_filters_narrow_the_cohort(org, data):
    with tenant_scope(org):
        ads = funnel_total(march(org, campaign=str(data["ads"].pk)))
        webinar = funnel_total(march(org, source="webinar"))
        rep_a = funnel_total(march(org, rep=str(data["rep_a"].pk)))
        team = funnel_total(march(org, team=str(data["team"].pk)))
    assert (ads.leads, ads.mql, ads.lost, ads.junk) == (3, 2, 1, 1)
    assert (webinar.leads, webinar.won) == (2, 1)
    assert (rep_a.leads, rep_a.won) == (2, 1)  # L1 and L3
    assert team.leads == 2


def test_cost_per_lead_customer_and_roi(org, data):
    with tenant_scope(org):
        economics = campaign_economics(march(org))
    rows = {r["label"]: r for r in economics["campaigns"]}
    webinar, ads = rows["Spring webinar"], rows["Search ads"]
    # Lifetime: the webinar brought L1, L2 and February's lead; L1 won 3,000.
    assert (webinar["leads"], webinar["won"], webinar["revenue"]) == (3, 1, Decimal(3000))
    assert webinar["cpl"] == pytest.approx(1000 / 3)
    assert webinar["cpa"] == pytest.approx(1000)
    assert webinar["roi"] == pytest.approx(2.0)
    assert (ads["leads"], ads["won"], ads["cpa"]) == (3, 0, None)
    assert ads["cpl"] == pytest.approx(500 / 3)
    assert ads["roi"] == pytest.approx(-1.0)
    total = economics["total"]
    assert (total["cost"], total["leads"], total["won"]) == (Decimal(1500), 6, 1)
    assert {r["label"] for r in economics["channels"]} == {"Paid search", "Webinar"}


def test_time_in_stage_median_and_p90(org, data):
    with tenant_scope(org):
        stays = {r["stage"]: r for r in time_in_stage(march(org))}
    # MQL stays: L1 1h, L3 48h then 24h, L5 2h; February's lead is still MQL.
    mql = stays["mql"]
    assert (mql["stays"], mql["open"]) == (4, 1)
    assert mql["median"] == pytest.approx(13 * H)
    assert mql["p90"] == pytest.approx(40.8 * H)
    assert stays["opportunity"]["median"] == pytest.approx(14 * 24 * H)  # L1 10d, L5 18d
    assert stays["recycled"]["stays"] == 1


def test_speed_to_lead_split_and_sla(org, data):
    with tenant_scope(org):
        speed = speed_to_lead(march(org))
    # System: L1 3m, L5 30m, L3 0 (its second MQL handoff); rep: 10m, 90m; total 13m, 120m.
    assert speed["system"]["median"] == pytest.approx(180)
    assert speed["system"]["p95"] == pytest.approx(180 + 0.9 * 1620)
    assert speed["rep"]["median"] == pytest.approx((10 + 90) / 2 * 60)
    assert speed["total"]["median"] == pytest.approx((13 + 120) / 2 * 60)
    assert [b["count"] for b in speed["bands"]] == [0, 1, 0, 1]
    assert speed["untouched"] == 1
    reps = {r["label"]: r for r in speed["by_rep"]}
    rep_a = reps[data["rep_a"].user.display_name]
    assert (rep_a["assigned"], rep_a["met"], rep_a["pending"], rep_a["compliance"]) == (
        2,
        1,
        1,
        1.0,
    )
    assert reps[data["rep_b"].user.display_name]["compliance"] == 0.0
    teams = {r["label"]: r for r in speed["by_team"]}
    assert teams["EMEA"]["compliance"] == 1.0 and teams["No team"]["breached"] == 1


def test_lead_velocity_rate(org, data):
    with tenant_scope(org):
        months = {m["month"]: m for m in mql_months(march(org))}
    # March: L1, L3 (twice, once counted), L5 and February's lead = 4; February: 1.
    assert months[dt.date(2026, 3, 1)]["mqls"] == 4
    assert months[dt.date(2026, 2, 1)]["mqls"] == 1
    assert months[dt.date(2026, 3, 1)]["lvr"] == pytest.approx(3.0)
    assert months[dt.date(2026, 1, 1)]["lvr"] is None  # no base: "—"


def test_funnel_page_and_csv(org, data, admin, client_for):
    url = reverse("reports:funnel", kwargs={"org_slug": org.slug})
    client = client_for(admin)
    page = client.get(url, MARCH)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="chart-cohorts"' in html and "SLA compliance by rep" in html
    csv = client.get(url, {**MARCH, "export": "stages"})
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    lines = csv.content.decode().splitlines()
    assert lines[0] == "Stage,Stays ended,Median (minutes),P90 (minutes),Still there"
    assert lines[2] == "MQL,4,780.00,2448.00,1"
    assert client.get(url, {**MARCH, "export": "nope"}).status_code == 400


def test_funnel_page_for_a_rep_shows_only_their_team(org, data, client_for):
    url = reverse("reports:funnel", kwargs={"org_slug": org.slug})
    rep_b = client_for(data["rep_b"])
    csv = rep_b.get(url, {**MARCH, "export": "funnel"}).content.decode().splitlines()
    assert csv[1] == "Leads,1,,"  # only L5, B's own lead
    # Asking for a rep outside their team is an unknown filter, not their numbers.
    bad = rep_b.get(url, {**MARCH, "rep": str(data["rep_a"].pk)})
    assert bad.status_code == 400 and "Unknown rep" in bad.content.decode()


@pytest.mark.parametrize("rollups", [False, True])
def test_funnel_page_query_count_is_flat(
    org, data, admin, client_for, django_assert_num_queries, rollups
):
    from reports.services.rollups import rollup_refresh

    url = reverse("reports:funnel", kwargs={"org_slug": org.slug})
    client = client_for(admin)
    if rollups:
        with tenant_scope(org):
            rollup_refresh(organization_id=org.pk)
    client.get(url, MARCH)
    # Live, on PostgreSQL each of the two velocity statements runs with JIT off
    # (SAVEPOINT, set_config, RELEASE inside the test's transaction); from the
    # rollups, velocity is two merges (histograms, SLA counts) instead of three.
    live = 11 + (6 if connection.vendor == "postgresql" else 0)
    with django_assert_num_queries(10 if rollups else live) as small:
        response = client.get(url, MARCH)
    assert (response.context["as_of"] is not None) is rollups
    with tenant_scope(org):
        for i in range(12):
            lead = make_lead(
                org,
                at(3, 1 + i),
                source=Channel.SOCIAL,
                stages=[("mql", at(3, 2 + i)), ("sal", at(3, 3 + i))],
            )
            f.AssignmentFactory(
                lead=lead,
                membership=f.MembershipFactory(organization=org),
                assigned_at=at(3, 2 + i, 11),
                first_touched_at=at(3, 2 + i, 12),
            )
        if rollups:
            rollup_refresh(organization_id=org.pk)
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(url, MARCH)
    assert response.context["funnel"].table.rows[0]["count"] == 6 + 12
    assert response.context["speed"].table.rows[2]["count"] == 2 + 12
