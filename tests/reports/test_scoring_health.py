"""Scoring health on a small fixed set: band/grade conversion, rule lift, AUC with ties."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from pipeline.models import StageTransition
from reports.period import parse_report_query
from reports.selectors.scoring import auc_from_groups, scoring_health
from tests.factories import ActivityFactory, LeadFactory, ScoringRuleFactory


def test_auc_rank_sum_with_ties():
    # won scores 30, 20 · not won 20, 10: pairs (30>20, 30>10, 20=20 → ½, 20>10) = 3.5 / 4
    assert auc_from_groups([(10, 1, 0), (20, 2, 1), (30, 1, 1)]) == pytest.approx(0.875)
    assert auc_from_groups([(10, 3, 0)]) is None  # nobody won: undefined, not 0
    assert auc_from_groups([]) is None


@pytest.fixture
def cohort(org, other_org):
    """Five leads: (score, band, grade, title, won)."""
    spec = [
        (30, "warm", "A", "VP Sales", True),
        (20, "warm", "B", "VP Ops", True),
        (20, "cold", "B", "Intern", False),
        (10, "cold", "C", "", False),
        (0, "", "", "", False),
    ]
    with tenant_scope(org):
        fit = ScoringRuleFactory(
            organization=org, name="VP", kind="fit", field="title", operator="contains",
            value="vp", points=10,
        )  # fmt: skip
        engaged = ScoringRuleFactory(
            organization=org, name="Two page views", kind="engagement", field="", operator="",
            activity_kinds=["page_view"], min_count=2, points=5,
        )  # fmt: skip
        ScoringRuleFactory(organization=org, name="Off", is_active=False, points=5)
        leads = []
        for score, band, grade, title, won in spec:
            lead = LeadFactory(organization=org, score=score, band=band, grade=grade, title=title)
            if won:
                StageTransition.objects.create(
                    organization=org, lead=lead, from_stage="opportunity", to_stage="won"
                )
            leads.append(lead)
        for lead, views in ((leads[0], 2), (leads[2], 3), (leads[3], 1)):
            for _ in range(views):
                ActivityFactory(organization=org, lead=lead, kind="page_view")
        Lead.objects.filter(pk=leads[4].pk).update(discarded_at=timezone.now())  # not counted
        LeadFactory(organization=org, score=99)
    with tenant_scope(other_org):
        other = LeadFactory(organization=other_org, score=500)
        StageTransition.objects.create(organization=other_org, lead=other, to_stage="won")
    return fit, engaged


def health(org, admin, params=None):
    with tenant_scope(org):
        query = parse_report_query(params or {}, organization=org, membership=admin)
        return scoring_health(organization_id=org.pk, query=query, now=timezone.now())


def test_hand_computed_health(org, admin, cohort):
    h = health(org, admin)
    # Four live leads of the five, plus the score-99 lead (not won): 5 leads, 2 won.
    assert (h.leads, h.won) == (5, 2)
    bands = {s.key: (s.leads, s.won) for s in h.bands}
    assert bands["warm"] == (2, 2) and bands["cold"] == (2, 0) and bands["hot"] == (0, 0)
    assert [s.conversion for s in h.bands if s.key == "hot"] == [None]  # shown as "—"
    grades = {s.key: (s.leads, s.won) for s in h.grades}
    assert grades["A"] == (1, 1) and grades["B"] == (2, 1) and grades["C"] == (1, 0)
    rules = {r.rule.name: r for r in h.rules}
    assert set(rules) == {"VP", "Two page views"}
    vp = rules["VP"]
    assert (vp.matched, vp.matched_won, vp.unmatched, vp.unmatched_won) == (2, 2, 3, 0)
    assert vp.lift is None  # unmatched never convert: no finite lift
    views = rules["Two page views"]
    assert (views.matched, views.matched_won) == (2, 1)  # the 1-view lead does not count
    assert views.lift == pytest.approx(0.5 / (1 / 3))
    # Scores 99(no) 30(won) 20(won) 20(no) 10(no), 2 × 3 pairs: 30 beats 20 and 10 (2),
    # loses to 99; 20 ties 20 (½), beats 10 (1), loses to 99 → 3.5 / 6.
    assert h.auc == pytest.approx(3.5 / 6)
    assert sum(s.leads for s in h.deciles) == 5


def test_page_and_csv(org, admin_client, cohort):
    url = reverse("reports:scoring", kwargs={"org_slug": org.slug})
    page = admin_client.get(url)
    assert page.status_code == 200
    assert b'data-testid="auc">0.58<' in page.content
    csv = admin_client.get(url, {"export": "rules"}).content.decode()
    assert "VP,Fit (profile),10,2,100.00,0.00," in csv


def test_empty_period_and_bad_input(org, admin_client, cohort):
    url = reverse("reports:scoring", kwargs={"org_slug": org.slug})
    empty = admin_client.get(url, {"start": "2024-01-01", "end": "2024-01-31"})
    assert empty.status_code == 200 and b"No leads arrived in this period" in empty.content
    assert admin_client.get(url, {"end": "2025-13-45"}).status_code == 400
    assert admin_client.get(url, {"campaign": "999999"}).status_code == 400


def test_query_count_is_constant(org, admin_client, cohort, django_assert_num_queries):
    url = reverse("reports:scoring", kwargs={"org_slug": org.slug})
    admin_client.get(url)
    # 19, and the rule-set version in use once per period (no learned version: no holdout).
    with django_assert_num_queries(20) as first:
        admin_client.get(url)
    with tenant_scope(org):
        for score in range(40):
            LeadFactory(organization=org, score=score, band="hot", grade="A", title="vp")
    with django_assert_num_queries(len(first.captured_queries)):
        admin_client.get(url)


def test_a_rule_is_flagged_for_review_only_when_its_lift_interval_says_so():
    from reports.selectors.scoring import RuleHealth, ScoringHealth
    from reports.views.scoring import _rule_table
    from scoring.models import ScoringRule

    rule = ScoringRule(name="Webinar", kind="fit", points=10)
    # Half the conversion of the rest, but on 5 leads: could be chance.
    small = RuleHealth(rule, matched=5, matched_won=1, unmatched=100, unmatched_won=40)
    # The same lift on 500 leads: the rule really picks worse leads.
    large = RuleHealth(rule, matched=500, matched_won=100, unmatched=500, unmatched_won=200)
    assert small.lift == pytest.approx(0.5) and large.lift == pytest.approx(0.5)
    low, high = small.lift_interval
    assert low < 1 < high and not small.pushes_wrong_way
    assert large.lift_interval[1] < 1 and large.pushes_wrong_way
    health = ScoringHealth(
        leads=1, won=1, auc=None, bands=[], grades=[], deciles=[], rules=[small, large]
    )
    flags = [bool(row.get("flag")) for row in _rule_table(health).rows]
    assert flags == [False, True]
    negative = ScoringRule(name="Student", kind="fit", points=-10)
    assert not RuleHealth(negative, 500, 100, 500, 200).pushes_wrong_way
    assert RuleHealth(negative, 500, 200, 500, 100).pushes_wrong_way
