"""The scoring engine on hand-computed examples: each rule type, decay, caps,
grades and bands, gating, MQL crossings and their history, breakdowns, bad data,
query counts, and the triggers (ingest hook, tenant jobs, starter rules, nightly
decay). Every test keeps a second organization in play.

`NOW` is noon UTC and activity ages are whole days: Julian day numbers are then
integers, so decay weights (1, 0.5, 0.25…) are exact on SQLite and PostgreSQL
and a .5 score rounds the same way on both.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection  # noqa: F401 - read by the xfail condition strings

from accounts.services import organization_create
from leadflow.core import hooks
from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, ActivityKind, Company, Lead
from leads.services.ingest import Touch, lead_ingest_batch
from scoring import engine, rescoring, services, tasks
from scoring.models import (
    GatingRule,
    RescoreJob,
    RescoreStatus,
    RuleKind,
    ScoreGroup,
    ScoreHistory,
    ScoringRule,
    ScoringSettings,
)
from tests.factories import CampaignFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PAGE_VIEW, EMAIL_OPEN, EMAIL_CLICK = "page_view", "email_open", "email_click"


# --- Helpers ------------------------------------------------------------------------


@pytest.fixture
def scoring(org):
    """Org A's settings: default bands and threshold, no decay unless a test sets it."""
    with tenant_scope(org):
        return ScoringSettings.objects.create(organization=org, half_life_days=None)


@pytest.fixture
def b_lead(other_org):
    """Org B's lead (same email as A's first lead, with activities) and a rule that
    would score it: rescoring org A must leave it alone."""
    with tenant_scope(other_org):
        ScoringRule.objects.create(
            organization=other_org, name="B", kind=RuleKind.FIT, field="email",
            operator="not_empty", points=500,
        )  # fmt: skip
        lead = Lead.objects.create(organization=other_org, email="ann@acme.com", title="VP")
        Activity.objects.create(organization=other_org, lead=lead, kind=PAGE_VIEW, occurred_at=NOW)
    return lead


def b_untouched(other_org, b_lead) -> None:
    with tenant_scope(other_org):
        lead = Lead.objects.get(pk=b_lead.pk)
        assert (lead.score, lead.grade, lead.scored_at, lead.score_breakdown) == (0, "", None, {})
        assert not ScoreHistory.objects.exists()


def lead(org, **fields) -> Lead:
    fields.setdefault("email", f"lead{Lead.objects.count()}@acme.com")
    return Lead.objects.create(organization=org, **fields)


def rule(org, points, kind=RuleKind.FIT, **fields) -> ScoringRule:
    return ScoringRule.objects.create(
        organization=org, name=fields.pop("name", "Rule"), kind=kind, points=points, **fields
    )


def engagement(org, points, kinds=(PAGE_VIEW,), **fields) -> ScoringRule:
    return rule(org, points, RuleKind.ENGAGEMENT, activity_kinds=list(kinds), **fields)


def touch(org, target: Lead, kind=PAGE_VIEW, days_ago: float = 0, **fields) -> Activity:
    return Activity.objects.create(
        organization=org,
        lead=target,
        kind=kind,
        occurred_at=NOW - timedelta(days=days_ago),
        **fields,
    )


def rescore(org, **kwargs) -> engine.RescoreResult:
    return engine.rescore(organization_id=org.pk, now=NOW, **kwargs)


def fresh(obj: Lead) -> Lead:
    return Lead.objects.get(pk=obj.pk)


# --- Fit rules ---------------------------------------------------------------------

FIT_CASES = [
    # field, operator, value, lead fields, hit?
    ("title", "contains", "vp", {"title": "Senior VP Marketing"}, True),
    ("title", "contains", "VP", {"title": "vp sales"}, True),
    ("title", "contains", "intern", {"title": "Internal auditor"}, True),
    ("title", "not_contains", "intern", {"title": "Marketing INTERN"}, False),
    ("title", "startswith", "head", {"title": "Head of Growth"}, True),
    ("title", "startswith", "head", {"title": "Team head"}, False),
    ("title", "eq", " CEO ", {"title": "ceo"}, True),
    ("title", "ne", "CEO", {"title": "CTO"}, True),
    ("title", "in", ["CEO", "CTO"], {"title": "cto"}, True),
    ("title", "in", "CEO, CTO", {"title": "CFO"}, False),
    ("country", "not_in", "US, DE", {"country": "FR"}, True),
    ("country", "not_in", "US, DE", {"country": "us"}, False),
    ("title", "empty", None, {"title": ""}, True),
    ("title", "not_empty", None, {"title": ""}, False),
    # LIKE wildcards in a value are literal characters.
    ("title", "contains", "50%", {"title": "50% remote"}, True),
    ("title", "contains", "50%", {"title": "500 remote"}, False),
    ("title", "contains", "a_b", {"title": "axb"}, False),
    ("title", "startswith", "%", {"title": "anything"}, False),
    ("title", "contains", "\\", {"title": "a\\b"}, True),
    ("company_size", "gte", 200, {"company_size": 200}, True),
    ("company_size", "gte", "200", {"company_size": 199}, False),
    ("company_size", "gt", 0, {"company_size": None}, False),
    # A missing number never matches a comparison, not even "not equal".
    # Like "not in": an unknown number is not equal to anything.
    ("company_size", "ne", 5, {"company_size": None}, True),
    ("company_size", "not_in", [5], {"company_size": None}, True),
    ("company_size", "eq", "5", {"company_size": 5}, True),
    ("company_size", "between", "500, 10", {"company_size": 10}, True),
    ("company_size", "between", [10, 500], {"company_size": 501}, False),
    ("company_size", "lte", 2.5, {"company_size": 2}, True),
    ("company.industry", "eq", "software", {"company": {"industry": "Software"}}, True),
    ("company.industry", "empty", None, {"company": None}, True),
    ("company.employee_count", "lt", 50, {"company": None}, False),
    ("company.employee_count", "lt", 50, {"company": {"employee_count": 49}}, True),
    (
        "company.annual_revenue",
        "gt",
        1000,
        {"company": {"annual_revenue": Decimal("1500.50")}},
        True,
    ),
    ("company.domain", "startswith", "ACME", {"company": {"domain": "acme.com"}}, True),
    ("custom.visits", "gte", 5, {"custom": {"visits": 7}}, True),
    ("custom.visits", "gte", 5, {"custom": {"visits": 7.5}}, True),
    # A custom attribute is a number when it is a JSON number or plain decimal
    # text (hosted forms post text): "7", " -2.5 ", but not "1e3" or "7 visits".
    ("custom.visits", "gte", 5, {"custom": {"visits": "7"}}, True),
    ("custom.visits", "lt", 0, {"custom": {"visits": " -2.5 "}}, True),
    ("custom.visits", "gte", 5, {"custom": {"visits": "1e3"}}, False),
    ("custom.visits", "gte", 5, {"custom": {"visits": "7 visits"}}, False),
    ("custom.visits", "gte", 5, {"custom": {"visits": "lots"}}, False),
    ("custom.visits", "between", "1,10", {"custom": {"visits": True}}, False),
    ("custom.visits", "lt", 5, {"custom": {}}, False),
    ("custom.plan", "in", ["pro", "team"], {"custom": {"plan": "PRO"}}, True),
    ("custom.plan", "eq", 5, {"custom": {"plan": 5}}, True),
    ("custom.plan", "empty", None, {"custom": {}}, True),
    ("custom.plan", "not_empty", None, {"custom": {"plan": ""}}, False),
    ("email_domain", "eq", "acme.com", {"email": "ann@acme.com"}, True),
    ("email_domain", "eq", "acme.com", {"email": "ann@sub.acme.com"}, False),
    ("email_domain", "in", ["@ACME.com", "globex.com"], {"email": "ann@acme.com"}, True),
    ("email_domain", "not_in", "gmail.com, yahoo.com", {"email": "ann@gmail.com"}, False),
    ("email_opt_in", "eq", "yes", {"email_opt_in": True}, True),
    ("email_opt_in", "ne", True, {"email_opt_in": True}, False),
    ("quality", "eq", "junk", {"quality": "junk"}, True),
]


@pytest.mark.parametrize(("field", "operator", "value", "fields", "hit"), FIT_CASES)
def test_fit_rule_operators(org, other_org, b_lead, scoring, field, operator, value, fields, hit):
    fields = dict(fields)
    with tenant_scope(org):
        company = fields.pop("company", None)
        if company is not None:
            fields["company"] = Company.objects.create(organization=org, name="Acme", **company)
        target = lead(org, **fields)
        bystander = lead(org, title="", company_size=None)
        fit = rule(org, 10, field=field, operator=operator, value=value)
        assert rescore(org).scored == 2
        target = fresh(target)
        assert target.fit_score == target.score == (10 if hit else 0)
        assert target.engagement_score == 0
        assert target.score_breakdown == {f"r{fit.pk}": 10 if hit else 0}
        assert fresh(bystander).scored_at == NOW
    b_untouched(other_org, b_lead)


def test_negative_fit_points_and_several_rules(org, other_org, b_lead, scoring):
    with tenant_scope(org):
        target = lead(org, title="Marketing Intern", company_size=500)
        intern = rule(org, -10, field="title", operator="contains", value="intern")
        big = rule(org, 10, field="company_size", operator="gte", value=200)
        vp = rule(org, 10, field="title", operator="contains", value="vp")
        rescore(org)
        target = fresh(target)
        assert target.fit_score == 0
        assert target.score_breakdown == {f"r{intern.pk}": -10, f"r{big.pk}": 10, f"r{vp.pk}": 0}
    b_untouched(other_org, b_lead)


# --- Engagement rules ---------------------------------------------------------------


def test_decay_weights_by_mode(org, other_org, b_lead, scoring):
    """Half-life 30 days, activities 0, 30 and 60 days old weigh 1, 0.5, 0.25."""
    with tenant_scope(org):
        scoring.half_life_days = 30
        scoring.save()
        target = lead(org)
        for days in (0, 30, 60):
            touch(org, target, days_ago=days)
        per = engagement(org, 8, per_occurrence=True)
        once = engagement(org, 8)
        first = engagement(org, 8, first_only=True)
        rescore(org)
        target = fresh(target)
        assert target.score_breakdown == {
            f"r{per.pk}": 14,  # 8 × (1 + 0.5 + 0.25)
            f"r{once.pk}": 8,  # the newest match
            f"r{first.pk}": 2,  # the first (oldest) match
        }
        assert (target.fit_score, target.engagement_score, target.score) == (0, 24, 24)
    b_untouched(other_org, b_lead)


def test_first_only_wins_over_per_occurrence(org, other_org, b_lead, scoring):
    with tenant_scope(org):
        scoring.half_life_days = 30
        scoring.save()
        target = lead(org)
        touch(org, target, EMAIL_OPEN, days_ago=30)
        touch(org, target, EMAIL_OPEN, days_ago=0)
        both = engagement(org, 4, kinds=[EMAIL_OPEN], first_only=True, per_occurrence=True)
        rescore(org)
        assert fresh(target).score_breakdown == {f"r{both.pk}": 2}
    b_untouched(other_org, b_lead)


def test_half_life_of_rule_then_group_then_organization(org, other_org, b_lead, scoring):
    with tenant_scope(org):
        scoring.half_life_days = 30
        scoring.save()
        fast = ScoreGroup.objects.create(organization=org, name="Fast", half_life_days=10)
        target = lead(org)
        touch(org, target, days_ago=60)
        by_org = engagement(org, 64)
        by_group = engagement(org, 64, group=fast)
        by_rule = engagement(org, 64, group=fast, half_life_days=60)
        rescore(org)
        assert fresh(target).score_breakdown == {
            f"r{by_org.pk}": 16,  # 64 × 0.5 ** (60 / 30)
            f"r{by_group.pk}": 1,  # 64 × 0.5 ** (60 / 10)
            f"r{by_rule.pk}": 32,  # 64 × 0.5 ** (60 / 60)
        }
    b_untouched(other_org, b_lead)


def test_no_decay_and_future_activities(org, other_org, b_lead, scoring):
    with tenant_scope(org):
        old = lead(org)
        touch(org, old, days_ago=1000)
        ahead = lead(org)
        touch(org, ahead, days_ago=-2)  # clock skew: counts with full weight
        plain = engagement(org, 7)
        rescore(org)
        assert fresh(old).score_breakdown == {f"r{plain.pk}": 7}
        scoring.half_life_days = 30
        scoring.save()
        rescore(org)
        assert fresh(ahead).score_breakdown == {f"r{plain.pk}": 7}
        assert fresh(old).score_breakdown == {f"r{plain.pk}": 0}  # 7 × 0.5 ** 33.3
    b_untouched(other_org, b_lead)


def test_rounding_is_half_up(org, other_org, b_lead, scoring):
    with tenant_scope(org):
        scoring.half_life_days = 30
        scoring.save()
        target = lead(org)
        touch(org, target, days_ago=30)
        up = engagement(org, 5)  # 2.5 -> 3
        down = engagement(org, -5)  # -2.5 -> -2
        rescore(org)
        target = fresh(target)
        assert target.score_breakdown == {f"r{up.pk}": 3, f"r{down.pk}": -2}
        assert target.engagement_score == 0  # the sum (0.0), not the rounded parts
    b_untouched(other_org, b_lead)


def test_window_min_count_and_property_filter(org, other_org, b_lead, scoring):
    with tenant_scope(org):
        campaign = CampaignFactory(organization=org, name="Spring_50%")
        target = lead(org)
        touch(org, target, days_ago=6, properties={"url": "https://x.example/Pricing/plans"})
        touch(org, target, days_ago=8, properties={"url": "/pricing"})
        touch(org, target, days_ago=1, properties={"url": "/blog"}, campaign=campaign)
        touch(org, target, kind="demo_request", days_ago=400)
        recent = engagement(org, 3, per_occurrence=True, window_days=7)
        pricing_twice = engagement(
            org, 5, field="url", operator="contains", value="/PRICING", min_count=2
        )
        pricing_thrice = engagement(
            org, 5, field="url", operator="contains", value="/pricing", min_count=3
        )
        recent_pricing = engagement(
            org, 5, field="url", operator="contains", value="/pricing", min_count=2, window_days=7
        )
        by_campaign = engagement(org, 4, field="campaign", operator="eq", value="spring_50%")
        wildcard = engagement(org, 4, field="campaign", operator="contains", value="g%0")
        demo = engagement(org, 30, kinds=["demo_request", "trial_signup"])
        rescore(org)
        assert fresh(target).score_breakdown == {
            f"r{recent.pk}": 6,  # two page views in the last 7 days
            f"r{pricing_twice.pk}": 5,
            f"r{pricing_thrice.pk}": 0,
            f"r{recent_pricing.pk}": 0,  # one of the two pricing views is older than 7 days
            f"r{by_campaign.pk}": 4,
            f"r{wildcard.pk}": 0,
            f"r{demo.pk}": 30,  # no window: ever
        }
    b_untouched(other_org, b_lead)


def test_per_occurrence_caps_towards_zero(org, other_org, b_lead, scoring):
    with tenant_scope(org):
        target = lead(org)
        for _ in range(7):
            touch(org, target, EMAIL_CLICK)
        clicks = engagement(org, 2, kinds=[EMAIL_CLICK], per_occurrence=True, max_points=10)
        penalty = engagement(org, -5, kinds=[EMAIL_CLICK], per_occurrence=True, max_points=12)
        odd_cap = engagement(org, -5, kinds=[EMAIL_CLICK], per_occurrence=True, max_points=-12)
        uncapped = engagement(org, 2, kinds=[EMAIL_CLICK], per_occurrence=True)
        rescore(org)
        assert fresh(target).score_breakdown == {
            f"r{clicks.pk}": 10,
            f"r{penalty.pk}": -12,
            f"r{odd_cap.pk}": -12,
            f"r{uncapped.pk}": 14,
        }
    b_untouched(other_org, b_lead)


# --- Groups, ceiling, grades, bands ------------------------------------------------


def test_group_caps_fit_and_engagement_parts_separately(org, other_org, b_lead, scoring):
    with tenant_scope(org):
        title = ScoreGroup.objects.create(organization=org, name="Title", cap=30)
        negative = ScoreGroup.objects.create(organization=org, name="Negative", cap=5)
        target = lead(org, title="VP Marketing")
        touch(org, target)
        rule(org, 20, field="title", operator="contains", value="vp", group=title)
        rule(org, 20, field="title", operator="contains", value="marketing", group=title)
        rule(org, -40, field="title", operator="contains", value="vp", group=negative)
        rule(org, 7, field="title", operator="not_empty")
        engagement(org, 25, group=title)
        engagement(org, 25, group=title)
        rescore(org)
        target = fresh(target)
        # fit: min(40, 30) + min(-40, 5) + 7 = -3; engagement: min(50, 30) = 30
        assert (target.fit_score, target.engagement_score, target.score) == (-3, 30, 27)
        assert sorted(target.score_breakdown.values()) == [-40, 7, 20, 20, 25, 25]
    b_untouched(other_org, b_lead)


def test_total_ceiling(org, other_org, b_lead, scoring):
    with tenant_scope(org):
        scoring.total_ceiling = 50
        scoring.save()
        target = lead(org, title="VP")
        touch(org, target)
        rule(org, 40, field="title", operator="eq", value="vp")
        engagement(org, 30)
        rescore(org)
        target = fresh(target)
        assert (target.fit_score, target.engagement_score, target.score) == (40, 30, 50)
    b_untouched(other_org, b_lead)


@pytest.mark.parametrize(
    ("fit", "grade"),
    [(40, "A"), (39, "B"), (25, "B"), (24, "C"), (10, "C"), (9, "D"), (0, "D"), (-1, "F")],
)
def test_grade_boundaries(org, other_org, b_lead, scoring, fit, grade):
    with tenant_scope(org):
        target = lead(org, title="x")
        rule(org, fit, field="title", operator="eq", value="x")
        rescore(org)
        assert fresh(target).grade == grade
    b_untouched(other_org, b_lead)


@pytest.mark.parametrize(
    ("total", "band"), [(100, "hot"), (99, "warm"), (40, "warm"), (39, "cold"), (-5, "cold")]
)
def test_band_boundaries(org, other_org, b_lead, scoring, total, band):
    with tenant_scope(org):
        target = lead(org)
        touch(org, target)
        engagement(org, total)
        rescore(org)
        assert fresh(target).band == band
    b_untouched(other_org, b_lead)


def test_custom_bands(org, other_org, b_lead, scoring):
    with tenant_scope(org):
        scoring.grade_bands = {"A": 100, "C": 5}  # no B or D: 5..99 is C, below 5 is F
        scoring.temperature_bands = {"hot": 10, "warm": 3}
        scoring.save()
        target = lead(org, title="x")
        rule(org, 7, field="title", operator="eq", value="x")
        rescore(org)
        target = fresh(target)
        assert (target.grade, target.band) == ("C", "warm")
    b_untouched(other_org, b_lead)


# --- Gating and MQL -------------------------------------------------------------------


def test_gate_blocks_mql_with_its_reason(org, other_org, b_lead, scoring):
    with tenant_scope(org):
        student = lead(org, title="Student", country="US")
        served = lead(org, title="Buyer", country="DE")
        for target in (student, served):
            touch(org, target)
        engagement(org, 150)
        GatingRule.objects.create(
            organization=org,
            reason="Country not served",
            field="country",
            operator="in",
            value=["US", "CA"],
        )
        GatingRule.objects.create(
            organization=org, reason="Student", field="title", operator="contains", value="student"
        )
        GatingRule.objects.create(
            organization=org, reason="Off", field="title", operator="not_empty", is_active=False
        )
        result = rescore(org)
        student, served = fresh(student), fresh(served)
        assert (student.score, student.mql_eligible, student.gating_reason) == (
            150,
            False,
            "Country not served",
        )
        assert (served.score, served.mql_eligible, served.gating_reason) == (150, True, "")
        assert result.crossed_up == [served.pk]
    b_untouched(other_org, b_lead)


@pytest.mark.parametrize(
    ("min_grade", "fit", "mql"),
    [("B", 24, False), ("B", 25, True), ("A", 39, False), ("F", -5, True), ("", -5, True)],
)
def test_minimum_fit_grade(org, other_org, b_lead, scoring, min_grade, fit, mql):
    with tenant_scope(org):
        scoring.min_fit_grade = min_grade
        scoring.save()
        target = lead(org, title="x")
        touch(org, target)
        rule(org, fit, field="title", operator="eq", value="x")
        engagement(org, 200)
        rescore(org)
        target = fresh(target)
        assert target.score >= scoring.mql_threshold
        assert (target.mql_eligible, target.gating_reason) == (mql, "")
    b_untouched(other_org, b_lead)


def test_crossings_are_reported_recorded_and_audited(org, other_org, b_lead, scoring, monkeypatch):
    seen = []
    monkeypatch.setattr(hooks.mql_crossing, "overridden", [lambda *args: seen.append(args)])
    with tenant_scope(org):
        hot = lead(org)
        cold = lead(org)
        touch(org, hot)
        demo = engagement(org, 120)

        first = rescore(org)
        assert (first.scored, first.crossed_up, first.crossed_down) == (2, [hot.pk], [])
        hot_row = fresh(hot)
        assert (hot_row.mql_eligible, hot_row.mql_changed_at, hot_row.band) == (True, NOW, "hot")
        assert fresh(cold).mql_changed_at is None
        # The first scoring sets a grade and band on both: one history row each.
        assert ScoreHistory.objects.count() == 2
        entry = ScoreHistory.objects.get(lead=hot)
        assert (entry.score, entry.band, entry.mql_eligible, entry.previous_mql_eligible) == (
            120,
            "hot",
            True,
            False,
        )
        assert (entry.previous_grade, entry.previous_band, entry.at) == ("", "", NOW)

        later = NOW + timedelta(hours=1)
        unchanged = engine.rescore(organization_id=org.pk, now=later)
        assert (unchanged.crossed_up, unchanged.crossed_down) == ([], [])
        assert ScoreHistory.objects.count() == 2
        assert fresh(hot).mql_changed_at == NOW  # untouched when MQL did not change
        assert fresh(hot).scored_at == later

        demo.is_active = False
        demo.save()
        down = rescore(org)
        assert (down.crossed_up, down.crossed_down) == ([], [hot.pk])
        hot_row = fresh(hot)
        assert (hot_row.score, hot_row.mql_eligible, hot_row.band, hot_row.score_breakdown) == (
            0,
            False,
            "cold",
            {},
        )
        entry = ScoreHistory.objects.filter(lead=hot).first()
        assert (entry.mql_eligible, entry.previous_mql_eligible, entry.previous_band) == (
            False,
            True,
            "hot",
        )
        assert ScoreHistory.objects.count() == 3
    assert seen == [(org.pk, [hot.pk], []), (org.pk, [], [hot.pk])]
    b_untouched(other_org, b_lead)


def test_rescoring_some_leads_leaves_the_others(org, other_org, b_lead, scoring):
    with tenant_scope(org):
        picked, other = lead(org, title="vp"), lead(org, title="vp")
        rule(org, 10, field="title", operator="eq", value="vp")
        assert rescore(org, lead_ids=[picked.pk]).scored == 1
        assert (fresh(picked).score, fresh(other).score, fresh(other).scored_at) == (10, 0, None)
        assert rescore(org, id_range=(other.pk, other.pk + 1)).scored == 1
        assert fresh(other).score == 10
        # Ids of another organization's leads are not this tenant's: nothing happens.
        assert rescore(org, lead_ids=[b_lead.pk]).scored == 0
    b_untouched(other_org, b_lead)


# --- Breakdown and bad data -----------------------------------------------------------


def test_breakdown_lists_every_active_rule(org, other_org, b_lead, scoring):
    with tenant_scope(org):
        target = lead(org, title="VP")
        touch(org, target, EMAIL_OPEN)
        vp = rule(org, 10, field="title", operator="contains", value="vp")
        miss = rule(org, 5, field="title", operator="contains", value="intern")
        opens = engagement(org, 1, kinds=[EMAIL_OPEN], first_only=True)
        off = rule(org, 50, field="title", operator="contains", value="vp", is_active=False)
        off_engagement = engagement(org, 50, kinds=[EMAIL_OPEN], is_active=False)
        rescore(org)
        target = fresh(target)
        assert target.score_breakdown == {f"r{vp.pk}": 10, f"r{miss.pk}": 0, f"r{opens.pk}": 1}
        assert f"r{off.pk}" not in target.score_breakdown
        assert f"r{off_engagement.pk}" not in target.score_breakdown
        assert target.score == 11
    b_untouched(other_org, b_lead)


def test_no_rules_scores_zero(org, other_org, b_lead, scoring):
    with tenant_scope(org):
        target = lead(org, title="VP")
        touch(org, target)
        rescore(org)
        target = fresh(target)
        assert (target.score, target.grade, target.band, target.score_breakdown) == (
            0,
            "D",
            "cold",
            {},
        )
        assert target.scored_at == NOW
    b_untouched(other_org, b_lead)


def test_odd_custom_values_never_break_a_rescore(org, other_org, b_lead, scoring):
    values = ["lots", "", "1e400", "NaN", "7", True, None, [1, 2], {"a": 1}, "中文", 150, 2.5]
    with tenant_scope(org):
        leads = [lead(org, custom={"budget": value}) for value in values]
        leads.append(lead(org, custom={}))
        numeric = rule(org, 10, field="custom.budget", operator="gt", value=100)
        between = rule(org, 1, field="custom.budget", operator="between", value="0, 5")
        text = rule(org, 100, field="custom.budget", operator="contains", value="中")
        assert rescore(org).scored == len(leads)
        scores = {
            repr(value): fresh(target).score
            for value, target in zip([*values, "missing"], leads, strict=True)
        }
    expected = {repr(value): 0 for value in [*values, "missing"]}
    expected.update({"150": 10, "2.5": 1, "'中文'": 100})
    assert scores == expected
    assert numeric.pk and between.pk and text.pk
    b_untouched(other_org, b_lead)


def test_leads_without_company_or_email(org, other_org, b_lead, scoring):
    with tenant_scope(org):
        nameless = Lead.objects.create(organization=org, email="", external_id="crm-1")
        rule(org, 5, field="company.industry", operator="empty")
        rule(org, 3, field="email_domain", operator="ne", value="gmail.com")
        rescore(org)
        assert fresh(nameless).score == 8
    b_untouched(other_org, b_lead)


# --- Query count ------------------------------------------------------------------------


def make_rules(org, count: int) -> None:
    group = ScoreGroup.objects.create(organization=org, name=f"G{count}", cap=50, half_life_days=10)
    for i in range(count):
        if i % 2:
            engagement(
                org, i, group=group if i % 3 else None, window_days=30, per_occurrence=bool(i % 4)
            )
        else:
            rule(
                org,
                i,
                field="company.industry" if i % 4 else "title",
                operator="contains",
                value="a",
                group=group,
            )
    GatingRule.objects.create(
        organization=org,
        reason="Competitor",
        field="email_domain",
        operator="eq",
        value="rival.com",
    )


@pytest.mark.parametrize("rules", [2, 20])
def test_rescoring_one_lead_is_constant_in_rules(
    org, other_org, b_lead, scoring, rules, django_assert_num_queries, monkeypatch
):
    """Load settings, rules, gates; then savepoint, drop, create the temp table,
    insert history, update leads, read crossings, drop, release. (What the
    pipeline does with a crossing is its own work, counted in its tests.)"""
    monkeypatch.setattr(hooks.mql_crossing, "overridden", [])
    with tenant_scope(org):
        make_rules(org, rules)
        target = lead(
            org,
            title="Manager",
            company=Company.objects.create(organization=org, industry="Retail"),
        )
        for days in range(5):
            touch(org, target, days_ago=days)
        with django_assert_num_queries(11):
            assert rescore(org, lead_ids=[target.pk]).scored == 1
        assert len(fresh(target).score_breakdown) == rules
    b_untouched(other_org, b_lead)


# --- Triggers -----------------------------------------------------------------------------


def test_ingest_rescores_the_lead_in_the_same_call(org, other_org, b_lead, scoring):
    with tenant_scope(org):
        engagement(org, 50, kinds=[ActivityKind.DEMO_REQUEST])
        rule(org, 10, field="title", operator="contains", value="vp")
        demo = Touch(activity_kind=ActivityKind.DEMO_REQUEST, activity_properties={"form": "Demo"})
        [created] = lead_ingest_batch(
            organization_id=org.pk,
            rows=[{"email": "ann@acme.com", "title": "VP Sales"}],
            touch=demo,
        )
        target = Lead.objects.get(pk=created.lead_id)
        assert (target.score, target.fit_score, target.engagement_score) == (60, 10, 50)
        assert target.scored_at is not None
        [merged] = lead_ingest_batch(
            organization_id=org.pk, rows=[{"email": "ann@acme.com", "title": "Intern"}], touch=demo
        )
        assert merged.lead_id == target.pk
        assert fresh(target).score == 50  # new title, and a second demo request (once-rule)
    b_untouched(other_org, b_lead)


def test_rescore_job_reports_progress_and_is_idempotent(
    org, other_org, b_lead, scoring, monkeypatch
):
    with tenant_scope(org):
        leads = [lead(org) for _ in range(5)]
        for target in leads[:3]:
            touch(org, target)
        engagement(org, 100)
        job = RescoreJob.objects.create(organization=org, reason="Test")
        monkeypatch.setattr(rescoring, "RESCORE_BATCH", 2)
        batches = []
        real = engine.rescore

        def spy(**kwargs):
            batches.append((kwargs["id_range"], RescoreJob.objects.get(pk=job.pk).processed))
            return real(**kwargs)

        monkeypatch.setattr(engine, "rescore", spy)
        rescoring.rescore_job_run(job_id=job.pk)
        job.refresh_from_db()
        first = leads[0].pk
        assert batches == [
            ((first, first + 2), 0),
            ((first + 2, first + 4), 2),
            ((first + 4, first + 6), 4),
        ]
        assert (job.status, job.total, job.processed, job.percent) == (
            RescoreStatus.DONE,
            5,
            5,
            100,
        )
        assert (job.crossed_up, job.crossed_down) == (3, 0)
        scores = list(Lead.objects.order_by("pk").values_list("score", "mql_eligible", "scored_at"))
        assert [s[:2] for s in scores] == [(100, True)] * 3 + [(0, False)] * 2

        # A finished job is skipped: nothing is rescored again.
        batches.clear()
        assert rescoring.rescore_job_run(job_id=job.pk).status == RescoreStatus.DONE
        assert batches == []
        assert (
            list(Lead.objects.order_by("pk").values_list("score", "mql_eligible", "scored_at"))
            == scores
        )

        # Another run gives the same scores and crosses nothing.
        again = RescoreJob.objects.create(organization=org, reason="Again")
        rescoring.rescore_job_run(job_id=again.pk)
        again.refresh_from_db()
        assert (again.status, again.processed, again.crossed_up, again.crossed_down) == (
            RescoreStatus.DONE,
            5,
            0,
            0,
        )
        assert [
            s[:2] for s in Lead.objects.order_by("pk").values_list("score", "mql_eligible")
        ] == [s[:2] for s in scores]
        assert ScoreHistory.objects.count() == 5
    b_untouched(other_org, b_lead)


def test_rescore_job_of_an_empty_tenant(org, other_org, b_lead, scoring):
    with tenant_scope(org):
        job = RescoreJob.objects.create(organization=org, reason="Empty")
        rescoring.rescore_job_run(job_id=job.pk)
        job.refresh_from_db()
        assert (job.status, job.total, job.processed, job.percent) == (
            RescoreStatus.DONE,
            0,
            0,
            100,
        )
    b_untouched(other_org, b_lead)


def test_starter_rules_install_is_idempotent(org, other_org, b_lead):
    with tenant_scope(org):
        assert services.starter_rules_install(organization_id=org.pk) == len(services.STARTER_RULES)
        assert services.starter_rules_install(organization_id=org.pk) == 0
        assert ScoringRule.objects.count() == len(services.STARTER_RULES)
        assert ScoreGroup.objects.count() == len(services.STARTER_GROUPS)
        # The starter set compiles and scores: a VP at a big company who asked for a demo.
        target = lead(org, title="VP Marketing", company_size=500, company_name="Acme")
        touch(org, target, ActivityKind.DEMO_REQUEST)
        rescore(org)
        assert fresh(target).score == 50 + 10 + 10 + 5
    with tenant_scope(other_org):
        assert ScoringRule.objects.count() == 1  # only b_lead's own rule


def test_new_organization_gets_the_starter_rules(org, other_org, b_lead):
    owner = UserFactory(email="founder@initech.example")
    new = organization_create(name="Initech", owner=owner)
    with tenant_scope(new):
        assert ScoringRule.objects.count() == len(services.STARTER_RULES)
        assert ScoringRule.objects.filter(kind=RuleKind.FIT, field="title").exists()
    with tenant_scope(org):
        assert not ScoringRule.objects.exists()


def test_nightly_decay_enqueues_one_job_per_organization(
    org, other_org, b_lead, django_capture_on_commit_callbacks
):
    from accounts.models import Organization

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        count = tasks.nightly_decay()
    organizations = list(Organization.objects.values_list("pk", flat=True))
    assert count == len(organizations) == len(callbacks) >= 2
    for organization_id in organizations:
        with tenant_scope(organization_id):
            [job] = RescoreJob.objects.all()
            assert (job.reason, job.status) == ("Nightly decay", RescoreStatus.DONE)
    with tenant_scope(other_org):
        assert fresh(b_lead).score == 500  # its own job, its own rule


# --- Number fields and email domains: presence, lists and text operators ----------


def test_email_domain_text_operators_test_the_domain(org, other_org, scoring):
    with tenant_scope(org):
        target = lead(org, email="ann.acme@gmail.com")
        rule(org, 10, field="email_domain", operator="startswith", value="gmail")
        rule(org, 100, field="email_domain", operator="contains", value="acme")
        rule(org, 1000, field="email_domain", operator="empty")
        nameless = Lead.objects.create(organization=org, email="", external_id="crm-9")
        rescore(org)
        assert (fresh(target).score, fresh(nameless).score) == (10, 1000)


@pytest.mark.parametrize(
    ("operator", "value"),
    [("empty", None), ("not_empty", None), ("in", "5, 10"), ("not_in", [" 7 ", "10"])],
)
def test_number_field_presence_and_lists(org, other_org, scoring, operator, value):
    with tenant_scope(org):
        sized, unsized = lead(org, company_size=5), lead(org, company_size=None)
        rule(org, 10, field="company_size", operator=operator, value=value)
        rescore(org)
        hits = (fresh(sized).score, fresh(unsized).score)
    expected = {"empty": (0, 10), "not_empty": (10, 0), "in": (10, 0), "not_in": (10, 10)}
    assert hits == expected[operator]


# --- Unicode case and JSON null: the same on both databases -----------------------


def test_non_ascii_case_is_folded(org, other_org, scoring):
    with tenant_scope(org):
        target = lead(org, title="École Directrice")
        rule(org, 10, field="title", operator="startswith", value="école")
        rescore(org)
        assert fresh(target).score == 10


def test_custom_null_is_empty(org, other_org, scoring):
    with tenant_scope(org):
        target = lead(org, custom={"plan": None})
        rule(org, 10, field="custom.plan", operator="empty")
        rule(org, 100, field="custom.plan", operator="eq", value="null")
        rescore(org)
        assert fresh(target).score == 10


def test_a_rule_that_does_not_compile_is_left_out_not_fatal(org, other_org, b_lead, scoring):
    """Written around the form (admin, shell): the tenant still rescores."""
    with tenant_scope(org):
        target = lead(org, title="VP Sales", company_size=50)
        rule(org, 10, field="title", operator="contains", value="vp")
        rule(org, 99, field="company_size", operator="in", value=["50", "many"])
        rule(org, 99, field="no_such_field", operator="eq", value="x")
        engagement(org, 99, field="url", operator="gt", value="5")  # properties are text
        touch(org, target, properties={"url": "9"})
        GatingRule.objects.create(
            organization=org, reason="Broken", field="company_size", operator="gt", value="lots"
        )
        assert rescore(org).scored == 1
        target = fresh(target)
        assert (target.score, target.gating_reason) == (10, "")
    b_untouched(other_org, b_lead)
