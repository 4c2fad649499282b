"""The rule simulation: numbers on a hand-computed dataset, agreement with a real
rescore, the tenant wall, and a query count that does not grow with leads."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from leads.models import ActivityKind
from scoring import engine, selectors
from scoring.models import GatingRule, RuleKind, ScoringRule, ScoringSettings
from scoring.simulation import simulate_rule
from tests.factories import ActivityFactory, GatingRuleFactory, LeadFactory, ScoringRuleFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def timeout_queries() -> int:
    """On PostgreSQL the comparison runs in a savepoint with a statement timeout."""
    from django.db import connection

    return 3 if connection.vendor == "postgresql" else 0


def small_dataset(org, *, now=NOW) -> dict:
    """Threshold 20, no decay; one saved rule: demo request +15.

    lead      title          activities     score now
    vp1       VP Marketing   demo request   15
    vp2       VP Sales       —               0
    intern    Intern         demo request   15
    """
    ScoringSettings.objects.create(organization=org, mql_threshold=20, half_life_days=None)
    leads = {
        "vp1": LeadFactory(organization=org, title="VP Marketing"),
        "vp2": LeadFactory(organization=org, title="VP Sales"),
        "intern": LeadFactory(organization=org, title="Intern"),
    }
    for key in ("vp1", "intern"):
        ActivityFactory(lead=leads[key], kind=ActivityKind.DEMO_REQUEST, occurred_at=now)
    demo = ScoringRuleFactory(
        organization=org,
        name="Demo request",
        kind=RuleKind.ENGAGEMENT,
        field="",
        operator="",
        value=None,
        activity_kinds=[ActivityKind.DEMO_REQUEST],
        points=15,
    )
    return {**leads, "demo": demo}


def vp_rule(org, points=10, **kwargs) -> ScoringRule:
    return ScoringRule(
        organization=org,
        name="VP title",
        kind=RuleKind.FIT,
        field="title",
        operator="contains",
        value="vp",
        points=points,
        **kwargs,
    )


def by_label(dist) -> dict[str, int]:
    """The non-empty buckets of a distribution."""
    return {b.label: n for b, n in zip(dist.buckets, dist.counts, strict=True) if n}


def other_tenant_noise(other_org) -> None:
    """Org B: leads that would match A's rules, and a rule that scores everyone."""
    with tenant_scope(other_org):
        for _ in range(4):
            lead = LeadFactory(organization=other_org, title="VP Everything")
            ActivityFactory(lead=lead, kind=ActivityKind.DEMO_REQUEST, occurred_at=NOW)
        ScoringRuleFactory(organization=other_org, field="title", value="vp", points=500)


def test_a_new_fit_rule_on_the_hand_computed_dataset(org, other_org):
    other_tenant_noise(other_org)
    with tenant_scope(org):
        small_dataset(org)
        sim = simulate_rule(organization_id=org.pk, candidate=vp_rule(org), now=NOW)
    # After: vp1 15+10 = 25 (MQL), vp2 0+10 = 10, intern 15.
    assert (sim.matches, sim.changed, sim.gained, sim.lost) == (2, 2, 1, 0)
    assert (sim.before.total, sim.before.mql, sim.after.mql, sim.mql_delta) == (3, 0, 1, 1)
    labels = [b.label for b in sim.before.buckets]
    assert labels[:3] == ["< 0", "0–3", "4–7"] and labels[-1] == "40+"  # step 20 / 5 = 4
    assert by_label(sim.before) == {"0–3": 1, "12–15": 2}
    assert by_label(sim.after) == {"8–11": 1, "12–15": 1, "24–27": 1}
    assert sim.after.mqls[labels.index("24–27")] == 1
    assert sim.threshold == 20


def test_editing_a_rule_replaces_its_saved_version(org, other_org):
    with tenant_scope(org):
        data = small_dataset(org)
        saved = ScoringRuleFactory(organization=org, field="title", value="vp", points=10)
        engine.rescore(organization_id=org.pk, now=NOW)  # vp1 = 25, an MQL
        edited = ScoringRule.objects.get(pk=saved.pk)
        edited.points = 4  # vp1 would fall to 19
        sim = simulate_rule(organization_id=org.pk, candidate=edited, now=NOW)
        data["vp1"].refresh_from_db()
    assert data["vp1"].mql_eligible is True
    assert (sim.before.mql, sim.after.mql, sim.gained, sim.lost) == (1, 0, 0, 1)
    assert (sim.matches, sim.changed) == (2, 2)


def test_an_edit_counts_the_leads_the_old_version_scored(org, other_org):
    """Leads matching only the saved version lose its points in the simulation."""
    with tenant_scope(org):
        data = small_dataset(org)
        saved = ScoringRuleFactory(organization=org, field="title", value="vp", points=10)
        engine.rescore(organization_id=org.pk, now=NOW)
        fit = ScoringRule.objects.get(pk=saved.pk)
        fit.value = "intern"  # vp1 25 → 15, vp2 10 → 0, intern 15 → 25
        sim = simulate_rule(organization_id=org.pk, candidate=fit, now=NOW)
        assert (sim.matches, sim.changed, sim.gained, sim.lost) == (1, 3, 1, 1)
        demo = data["demo"]
        demo.activity_kinds = [ActivityKind.PAGE_VIEW]  # nobody viewed a page
        sim = simulate_rule(organization_id=org.pk, candidate=demo, now=NOW)
    assert (sim.matches, sim.changed, sim.lost, sim.after.mql) == (0, 2, 1, 0)
    assert by_label(sim.after) == {"0–3": 1, "8–11": 2}


def test_an_unchanged_rule_changes_nothing(org, other_org):
    with tenant_scope(org):
        data = small_dataset(org)
        sim = simulate_rule(organization_id=org.pk, candidate=data["demo"], now=NOW)
    assert (sim.matches, sim.changed, sim.gained, sim.lost, sim.mql_delta) == (2, 0, 0, 0, 0)
    assert sim.before.counts == sim.after.counts


def test_an_engagement_rule_counts_its_matches_before_points(org, other_org):
    """min_count decides the match; a window leaves old activities out."""
    with tenant_scope(org):
        data = small_dataset(org)
        for days in (1, 2, 40):
            ActivityFactory(
                lead=data["vp2"],
                kind=ActivityKind.PAGE_VIEW,
                occurred_at=NOW - dt.timedelta(days=days),
                properties={"url": "https://acme.example/pricing"},
            )
        ActivityFactory(
            lead=data["intern"],
            kind=ActivityKind.PAGE_VIEW,
            occurred_at=NOW,
            properties={"url": "https://acme.example/blog"},
        )
        rule = ScoringRule(
            organization=org,
            name="Pricing twice this month",
            kind=RuleKind.ENGAGEMENT,
            activity_kinds=[ActivityKind.PAGE_VIEW],
            field="url",
            operator="contains",
            value="/pricing",
            min_count=3,
            window_days=30,
            points=30,
        )
        assert simulate_rule(organization_id=org.pk, candidate=rule, now=NOW).matches == 0
        rule.min_count = 2
        sim = simulate_rule(organization_id=org.pk, candidate=rule, now=NOW)
    assert (sim.matches, sim.gained, sim.after.mql) == (1, 1, 1)  # vp2: 0 + 30


def test_gates_and_the_minimum_grade_hold_in_the_simulation(org, other_org):
    with tenant_scope(org):
        data = small_dataset(org)
        GatingRuleFactory(
            organization=org, reason="Competitor", field="email", operator="eq",
            value=data["vp1"].email,
        )  # fmt: skip
        sim = simulate_rule(organization_id=org.pk, candidate=vp_rule(org), now=NOW)
        assert (sim.matches, sim.changed, sim.after.mql) == (2, 2, 0)
        ScoringSettings.objects.update(min_fit_grade="A")  # A needs 40 fit points
        GatingRule.objects.all().delete()
        sim = simulate_rule(organization_id=org.pk, candidate=vp_rule(org), now=NOW)
    assert sim.after.mql == 0


def test_discarded_and_merged_leads_are_left_out(org, other_org):
    with tenant_scope(org):
        data = small_dataset(org)
        LeadFactory(organization=org, title="VP Gone", discarded_at=NOW)
        LeadFactory(organization=org, title="VP Merged", merged_into=data["vp1"])
        sim = simulate_rule(organization_id=org.pk, candidate=vp_rule(org), now=NOW)
    assert (sim.before.total, sim.matches) == (3, 2)


def test_other_tenants_are_invisible(org, other_org):
    other_tenant_noise(other_org)
    with tenant_scope(org):
        small_dataset(org)
        sim = simulate_rule(organization_id=org.pk, candidate=vp_rule(org), now=NOW)
    with tenant_scope(other_org):
        untouched = list(selectors.live_leads().values_list("score", "scored_at"))
    assert sim.before.total == 3 and sim.matches == 2
    assert untouched == [(0, None)] * 4  # nothing was written in B


def test_the_simulation_agrees_with_the_rescore_that_follows(org, other_org):
    """Decay, caps, per-occurrence points: what the page predicts is what saving does."""
    now = timezone.now()
    with tenant_scope(org):
        ScoringSettings.objects.create(organization=org, mql_threshold=30, half_life_days=10)
        titles = ["VP Sales", "Intern", "Head of Data", "CEO", "Analyst"]
        for i in range(25):
            lead = LeadFactory(organization=org, title=titles[i % 5], company_size=i * 20)
            for j in range(i % 6):
                ActivityFactory(
                    lead=lead,
                    kind=[ActivityKind.PAGE_VIEW, ActivityKind.EMAIL_CLICK][j % 2],
                    occurred_at=now - dt.timedelta(days=3 * j + i % 4),
                )
        ScoringRuleFactory(organization=org, field="company_size", operator="gte", value=200)
        engine.rescore(organization_id=org.pk, now=now)
        before = selectors.score_distribution(settings=ScoringSettings.objects.get())
        candidate = ScoringRule(
            organization=org,
            name="Clicks",
            kind=RuleKind.ENGAGEMENT,
            activity_kinds=[ActivityKind.EMAIL_CLICK, ActivityKind.PAGE_VIEW],
            per_occurrence=True,
            max_points=25,
            points=7,
        )
        sim = simulate_rule(organization_id=org.pk, candidate=candidate, now=now)
        candidate.save()
        result = engine.rescore(organization_id=org.pk, now=now)
        after = selectors.score_distribution(settings=ScoringSettings.objects.get())
    assert (sim.before.counts, sim.before.mql) == (before.counts, before.mql)
    assert (sim.after.counts, sim.after.mqls, sim.after.mql) == (
        after.counts,
        after.mqls,
        after.mql,
    )
    assert sim.gained == len(result.crossed_up) > 0
    assert sim.lost == len(result.crossed_down)


@pytest.mark.parametrize("kind", [RuleKind.FIT, RuleKind.ENGAGEMENT])
def test_query_count_does_not_grow_with_leads(org, other_org, django_assert_num_queries, kind):
    with tenant_scope(org):
        small_dataset(org)
        candidate = vp_rule(org)
        if kind == RuleKind.ENGAGEMENT:
            candidate = ScoringRule(
                organization=org, kind=kind, activity_kinds=["page_view"], points=3, name="x"
            )
        # Configuration (settings, rules, gates) + the one comparison.
        with django_assert_num_queries(4 + timeout_queries()):
            small = simulate_rule(organization_id=org.pk, candidate=candidate, now=NOW)
        for i in range(40):
            lead = LeadFactory(organization=org, title="VP" if i % 2 else "Analyst")
            ActivityFactory(lead=lead, kind=ActivityKind.PAGE_VIEW, occurred_at=NOW)
        with django_assert_num_queries(4 + timeout_queries()):
            large = simulate_rule(organization_id=org.pk, candidate=candidate, now=NOW)
    assert (small.before.total, large.before.total) == (3, 43)


@pytest.mark.postgres
def test_a_statement_over_the_time_limit_is_cancelled(db, monkeypatch):
    from django.db import connection

    from scoring import simulation

    if connection.vendor != "postgresql":
        pytest.skip("statement timeouts are PostgreSQL's")
    monkeypatch.setattr(simulation, "TIMEOUT_MS", 50)
    assert simulation._fetch("SELECT 1 + %s", [1]) == (2,)
    with pytest.raises(simulation.SimulationTooSlow, match="too many to simulate"):
        simulation._fetch("SELECT pg_sleep(2)", [])
    assert simulation._fetch("SELECT 1", []) == (1,)  # the connection is still usable


def test_the_rule_page_explains_a_simulation_that_took_too_long(
    org, other_org, admin_client, monkeypatch
):
    from django.urls import reverse

    from scoring import simulation, views

    def too_slow(**kwargs):
        raise simulation.SimulationTooSlow("Your leads are too many to simulate within 30 seconds.")

    monkeypatch.setattr(views, "simulate_rule", too_slow)
    response = admin_client.post(
        reverse("scoring:rule_simulate", kwargs={"org_slug": org.slug}),
        {"kind": "fit", "field": "title", "operator": "contains", "value": "vp", "points": "5"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "too many to simulate within 30 seconds" in response.content.decode()
