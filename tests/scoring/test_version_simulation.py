"""Simulating a whole rule-set version on the leads with a known outcome it
was not learned from: AUC of the rules in use and of the version (each equal
to the AUC of the scores the engine stores once that rule set is applied),
per-rule matches and conversion, a constant number of queries, the page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, Lead, LeadStage
from scoring import engine, services, versions
from scoring import fields as F_
from scoring.models import RuleSetVersion, ScoringRule
from scoring.simulation import simulate_version
from tests.reports.test_xeducation_scoring import independent_auc
from tests.scoring.test_learning import make_leads

pytestmark = pytest.mark.django_db

OUTCOMES = [LeadStage.WON, LeadStage.LOST, LeadStage.DISQUALIFIED]


def fit(name, value, points, group=None):
    rule = {"name": name, "kind": "fit", "points": points, "field": "custom.industry_x",
            "operator": "eq", "value": value}  # fmt: skip
    if group:
        rule["group"] = {"name": group, "cap": 25}
    return rule


RULES = [
    fit("Education", "education", 20, "Industry"),
    fit("Health", "health", 10, "Industry"),
    fit("Retail", "retail", -10),
    {"name": "Page views", "kind": "engagement", "points": 5, "activity_kinds": ["page_view"],
     "per_occurrence": True, "max_points": 15},
    {"name": "Tagged by sales", "kind": "fit", "points": 50, "field": "custom.tags",
     "operator": "eq", "value": "ringing"},
]  # fmt: skip


def draft(org, rules) -> RuleSetVersion:
    return RuleSetVersion.objects.create(
        organization=org, number=RuleSetVersion.objects.count() + 1, source="import",
        title="Hand-made", rules=rules, settings={"mql_threshold": 30},
    )  # fmt: skip


def stored_auc() -> float:
    rows = Lead.objects.filter(stage__in=OUTCOMES).values_list("score", "stage")
    return independent_auc([(s, stage == LeadStage.WON) for s, stage in rows])


def test_version_simulation_matches_the_applied_scores(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    with tenant_scope(other_org):
        make_leads(other_org, 50, seed=9)  # never counted
    with tenant_scope(org):
        services.starter_rules_install(organization_id=org.pk)
        make_leads(org, 240, seed=3)
        Lead.objects.create(organization=org, email="open@example.org")  # no outcome
        services.post_qualification_mark(
            organization_id=org.pk, fields=["custom.tags"], actor=admin
        )
        engine.rescore(organization_id=org.pk)
        version = draft(org, RULES)
        sim = simulate_version(version=version)

        known = Lead.objects.filter(stage__in=OUTCOMES)
        assert (sim.leads, sim.won) == (known.count(), known.filter(stage="won").count())
        assert sim.current_auc == pytest.approx(stored_auc(), abs=1e-12)
        assert sim.skipped == ["Tagged by sales"]
        by_name = {r.name: r for r in sim.rules}
        for name, value in (("Education", "education"), ("Health", "health")):
            matched = known.filter(F_.condition("custom.industry_x", "eq", value))
            assert (by_name[name].matched, by_name[name].won) == (
                matched.count(),
                matched.filter(stage="won").count(),
            )
        viewed = known.filter(pk__in=Activity.objects.values("lead_id"))
        assert by_name["Page views"].matched == viewed.count() > 0
        assert by_name["Education"].rate > sim.base_rate > by_name["Retail"].rate

        with django_capture_on_commit_callbacks(execute=True):
            versions.version_apply(version=version, actor=admin)
        assert sim.draft_auc == pytest.approx(stored_auc(), abs=1e-12)
        assert sim.auc_delta == pytest.approx(sim.draft_auc - sim.current_auc)
        assert sim.draft_auc > 0.6


@pytest.mark.parametrize(("leads", "rules"), [(80, RULES[:2]), (200, RULES)])
def test_version_simulation_query_count_is_constant(org, leads, rules, django_assert_num_queries):
    with tenant_scope(org):
        services.starter_rules_install(organization_id=org.pk)
        make_leads(org, leads, seed=5)
        version = draft(org, rules)
        # The configuration (4), the simulation (1; on PostgreSQL inside a
        # savepoint with a statement timeout: 3 more).
        with django_assert_num_queries(5 if connection.vendor == "sqlite" else 8):
            simulate_version(version=version)


def rows_processed(sql: str, params: list) -> int:
    """Rows all plan nodes handled (rows times loops), from EXPLAIN ANALYZE."""
    import json

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan

    def walk(node) -> int:
        own = node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
        return own + sum(walk(child) for child in node.get("Plans", []))

    return walk(plan[0]["Plan"])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_simulations_score_each_lead_once_even_without_statistics(org, other_org):
    """A new tenant's tables have no statistics: each side of a simulation is
    materialized, so the rules run once per lead (nested on one-row estimates,
    every lead was scored again for each lead: 2 s for 240, and the statement
    timeout under load)."""
    from unittest import mock

    from scoring import simulation
    from scoring.simulation import simulate_rule

    with tenant_scope(org):
        services.starter_rules_install(organization_id=org.pk)
        make_leads(org, 240, seed=3)
        engine.rescore(organization_id=org.pk)
        version = draft(org, RULES)
        candidate = ScoringRule(organization=org, kind="fit", points=5, field="title",
                                operator="contains", value="vp", name="VP")  # fmt: skip
        statements = []
        real = simulation._fetch
        with mock.patch.object(
            simulation, "_fetch", side_effect=lambda *a: statements.append(a) or real(*a)
        ):
            simulate_version(version=version)
            simulate_rule(organization_id=org.pk, candidate=candidate)
        assert len(statements) == 2
        for sql, params in statements:
            # 405k rows now, 21M when every lead was scored again per lead.
            assert rows_processed(sql, params) < 30 * 240**2, sql[:80]


def test_version_simulation_page(org, other_org, admin_client):
    with tenant_scope(org):
        make_leads(org, 60, seed=4)
        version = draft(org, RULES)
    with tenant_scope(other_org):
        foreign = draft(other_org, RULES)
    detail = admin_client.get(
        reverse("scoring:version_detail", kwargs={"org_slug": org.slug, "version_id": version.pk})
    )
    url = reverse(
        "scoring:version_simulate", kwargs={"org_slug": org.slug, "version_id": version.pk}
    )
    assert url.encode() in detail.content
    page = admin_client.get(url)
    assert page.status_code == 200
    for testid in ("sim-current-auc", "sim-draft-auc", "sim-auc-delta", "simulation-rules"):
        assert f'data-testid="{testid}"'.encode() in page.content
    assert b"Education" in page.content
    other = reverse(
        "scoring:version_simulate", kwargs={"org_slug": org.slug, "version_id": foreign.pk}
    )
    assert admin_client.get(other).status_code == 404
