"""The scoring pages' per-rule figures in one pass (issue 15): the scoring-health
rule table (matched, matched and won per rule) and the rule list's matching
leads are one statement whatever the number of rules, and give the figures the
old per-rule computation gave (kept here as the oracle), on SQLite and on
PostgreSQL, with another tenant's look-alike data in the database."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db.models import Count, Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, Lead, LeadStage
from pipeline.models import StageTransition
from reports.period import parse_report_query
from reports.selectors.scoring import cohort, scoring_health
from scoring import engine
from scoring import fields as scoring_fields
from scoring.models import RuleKind, ScoringRule
from scoring.selectors import live_leads, rule_match_counts
from tests.factories import ActivityFactory, LeadFactory, ScoringRuleFactory

TITLES = ["VP Sales", "Intern", "", "vp of ops", "Head of IT"]
ORIGINS = ["API", "Landing Page", "Import", None]
FIT = [
    ("title", "contains", "vp"),
    ("title", "empty", None),
    ("company_size", "gte", 200),
    ("company_size", "between", [50, 500]),
    ("custom.origin", "eq", "api"),
    ("custom.origin", "in", ["import", "landing page"]),
    ("custom.origin", "not_in", ["api"]),
    ("custom.visits", "gte", 3),
    ("custom.visits", "lt", 2),
    ("custom.origin", "empty", None),
]
ENGAGEMENT = [
    dict(activity_kinds=["page_view"]),
    dict(activity_kinds=["page_view"], min_count=2),
    dict(activity_kinds=["page_view", "email_click"], window_days=30),
    dict(activity_kinds=["page_view"], field="url", operator="contains", value="pricing"),
    dict(activity_kinds=["form_submit"], window_days=7, min_count=1),
    dict(activity_kinds=[]),  # matches nothing
]


def build_tenant(org, *, leads: int = 30) -> None:
    """Leads with titles, sizes, custom attributes (one with a number as text),
    activities of several kinds and ages, some won, some discarded or merged."""
    now = timezone.now()
    with tenant_scope(org):
        made = []
        for i in range(leads):
            custom = {"visits": i % 6}
            if ORIGINS[i % 4] is not None:
                custom["origin"] = ORIGINS[i % 4]
            if i == 7:
                custom["visits"] = "n/a"
            lead = LeadFactory(
                organization=org,
                title=TITLES[i % 5],
                company_size=[None, 10, 200, 900][i % 4],
                custom=custom,
            )
            made.append(lead)
            if i % 3 == 0 or i % 7 == 0:
                StageTransition.objects.create(
                    organization=org, lead=lead, from_stage="opportunity", to_stage=LeadStage.WON
                )
            for k in range(i % 4):
                ActivityFactory(
                    organization=org,
                    lead=lead,
                    kind=["page_view", "email_click"][k % 2],
                    occurred_at=now - dt.timedelta(days=(i * 7 + k * 11) % 60),
                    properties={"url": "/pricing" if (i + k) % 3 == 0 else "/blog"},
                )
            if i % 5 == 1:
                ActivityFactory(organization=org, lead=lead, kind="form_submit",
                                occurred_at=now - dt.timedelta(days=i % 10))  # fmt: skip
        Lead.objects.filter(pk=made[-2].pk).update(discarded_at=now)
        Lead.objects.filter(pk=made[-1].pk).update(merged_into=made[1])


def make_rules(org, count: int) -> list[ScoringRule]:
    """`count` active rules cycling through the fit and engagement shapes above."""
    shapes = [("fit", spec) for spec in FIT] + [("engagement", spec) for spec in ENGAGEMENT]
    shapes.insert(1, shapes.pop(len(FIT)))  # the first three: fit, engagement, fit
    with tenant_scope(org):
        rules = []
        for n in range(count):
            kind, spec = shapes[n % len(shapes)]
            if kind == "fit":
                field, operator, value = spec
                extra = dict(field=field, operator=operator, value=value)
            else:
                extra = {"field": "", "operator": "", "value": None, **spec}
            points = (n % 9) - 4 or 5
            rules.append(ScoringRuleFactory(organization=org, kind=kind, points=points, **extra))
        ScoringRuleFactory(organization=org, name="Off", is_active=False, points=5)
    return rules


# --- The old per-rule computation, kept as the oracle --------------------------------


def old_rule_match(rule: ScoringRule, now: dt.datetime) -> Q:
    if rule.kind == RuleKind.FIT:
        return scoring_fields.condition(rule.field, rule.operator, rule.value)
    if not rule.activity_kinds:
        return Q(pk__in=[])
    matching = (
        Activity.objects.filter(engine.activity_filter(rule, now, prefix=""))
        .order_by()
        .values("lead_id")
        .annotate(c=Count("pk"))
        .filter(c__gte=max(int(rule.min_count), 1))
        .values("lead_id")
    )
    return Q(pk__in=matching)


def old_health_counts(leads, rules, now) -> dict[int, tuple[int, int]]:
    won = Exists(StageTransition.objects.filter(lead_id=OuterRef("pk"), to_stage=LeadStage.WON))
    out = {}
    for rule in rules:  # one query per rule
        matched = leads.filter(old_rule_match(rule, now))
        out[rule.pk] = (matched.count(), matched.filter(won).count())
    return out


def old_list_counts(rule_ids: list[int]) -> dict[int, int]:
    return {
        pk: live_leads()
        .filter(Q(**{f"score_breakdown__r{pk}__gt": 0}) | Q(**{f"score_breakdown__r{pk}__lt": 0}))
        .count()
        for pk in rule_ids
    }


@pytest.fixture
def two_tenants(org, other_org):
    build_tenant(org)
    build_tenant(other_org, leads=25)  # the same shapes: would match the same rules
    rules = make_rules(org, len(FIT) + len(ENGAGEMENT))
    make_rules(other_org, 5)
    for tenant in (org, other_org):
        with tenant_scope(tenant):
            engine.rescore(organization_id=tenant.pk)
    return rules


def test_rule_table_figures_are_the_old_per_rule_figures(org, admin, two_tenants):
    """Including beside an engagement rule without activity kinds (it matches
    nothing): it once emptied the one aggregate, and every rule read 0 matches."""
    now = timezone.now()
    with tenant_scope(org):
        query = parse_report_query({}, organization=org, membership=admin)
        health = scoring_health(organization_id=org.pk, query=query, now=now)
        rules = [r.rule for r in health.rules]
        old = old_health_counts(cohort(query), rules, now)
    new = {r.rule.pk: (r.matched, r.matched_won) for r in health.rules}
    assert len(rules) == len(two_tenants) == 16
    assert new == old
    assert all(
        (r.unmatched, r.unmatched_won) == (health.leads - r.matched, health.won - r.matched_won)
        for r in health.rules
    )
    # Not a trivial agreement: rules match some leads and not others, some won.
    assert len(set(new.values())) > 6
    assert all(0 < m < health.leads for pk, (m, _) in new.items() if pk != rules[-1].pk)
    assert new[rules[-1].pk] == (0, 0) and not rules[-1].activity_kinds
    assert sum(w for _, w in new.values()) > 0


def test_rule_list_counts_are_the_old_per_rule_counts(org, two_tenants):
    with tenant_scope(org):
        # A breakdown with a fraction and a negative, as older versions may have stored.
        lead = live_leads().order_by("pk").first()
        lead.score_breakdown = {**lead.score_breakdown, f"r{two_tenants[0].pk}": -0.4}
        lead.save(update_fields=["score_breakdown"])
        ids = [r.pk for r in ScoringRule.objects.all()]
        new = rule_match_counts(rule_ids=ids)
        old = old_list_counts(ids)
        one_by_one = {pk: rule_match_counts(rule_ids=[pk])[pk] for pk in ids}  # a row's refresh
    assert new == old == one_by_one
    assert len(set(new.values())) > 5 and max(new.values()) < 28


# --- Constant whatever the number of rules ----------------------------------------------


def page_sql(client, url: str, django_assert_num_queries, expected: int) -> str:
    with django_assert_num_queries(expected) as queries:
        assert client.get(url).status_code == 200
    return "\n".join(q["sql"] for q in queries.captured_queries)


def lookups(sql: str, *patterns: str) -> dict[str, int]:
    """How often each pattern (a table read, a column) occurs in the statements."""
    return {p: len(re.findall(p, sql)) for p in patterns}


READS = r'(?:FROM|JOIN) "{}"'


@pytest.mark.parametrize(
    ("page", "queries", "names"),
    [
        # session, user, membership with its org + config (3), segments, scores, rules,
        # holdout version, each twice (this period and the previous) …
        (
            "reports:scoring",
            20,
            (READS.format("pipeline_stagetransition"), READS.format("leads_activity")),
        ),
        # … and the rule list: session, user, membership with its org + settings, rules, match
        # counts, groups, distribution, latest job, changes (no change: no group names).
        ("scoring:rule_list", 10, ('"score_breakdown"',)),
    ],
)
def test_pages_read_each_lead_once_whatever_the_number_of_rules(
    org, other_org, admin_client, django_assert_num_queries, page, queries, names
):
    """With 3 rules and with 40 the pages run the same statements, and the stage
    history, the activities and the breakdowns are named as often: no rule adds a
    look-up of its own."""
    build_tenant(org, leads=12)
    build_tenant(other_org, leads=6)
    url = reverse(page, kwargs={"org_slug": org.slug})
    make_rules(org, 3)
    admin_client.get(url)  # the settings row is created on first use
    few = lookups(page_sql(admin_client, url, django_assert_num_queries, queries), *names)
    make_rules(org, 37)
    sql = page_sql(admin_client, url, django_assert_num_queries, queries)
    many = lookups(sql, *names)
    assert many == few
    assert all(few.values())
    # Won leads are read once per statement, never looked up lead by lead (a
    # correlated look-up planned without statistics scans the history per lead).
    assert not re.search(r'"pipeline_stagetransition" U\d+ WHERE [^)]*"lead_id" = \(', sql)
