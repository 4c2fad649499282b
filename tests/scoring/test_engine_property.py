"""The SQL engine against the plain-Python reference (tests/scoring/reference.py).

Random rules (fit on text, number, custom and company fields with every operator
that applies; engagement with kinds, property filters, counts, windows,
once/per-occurrence/first-only, caps, groups with caps, half-lives including
none), random leads (unicode, empty strings, non-numeric custom values, no
company) and activities (kinds, ages, properties), optional ceiling, gating rules
and minimum grade. Every lead's stored fields must equal the reference's; a
second organization's leads must keep their scores.

Runs on whatever database the suite runs on: SQLite by default, PostgreSQL under
scripts/with_services.py — both must give the reference's scores.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, Campaign, Company, Lead
from scoring import engine
from scoring.models import (
    GatingRule,
    Operator,
    RuleKind,
    ScoreGroup,
    ScoreHistory,
    ScoringRule,
    ScoringSettings,
)
from tests.scoring import reference

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DAY = 86400

# Text atoms shared by lead values and rule values so that conditions hit often.
# LIKE wildcards (% _) must be taken literally; non-ASCII letters fold case too.
ATOMS = ["vp", "VP", "Marketing", "intern", "head", "CEO", "%", "_", "50%", "a_b", "é", "中文"]
ATOMS += ["über", "ÜBER", "École", "x", "Student", "  ", "\\"]
COUNTRIES = ["US", "DE", "us", "FR", "", "é"]
QUALITIES = ["ok", "suspect", "junk"]
DOMAINS = ["acme.com", "ACME.com", "gmail.com", "sub.acme.com", "bücher.de", "a_b.io"]
DOMAIN_VALUES = ["acme.com", "@acme.com", "ACME.COM", "gmail.com", "bücher.de", "a_b.io", "ab.io"]
CUSTOM_KEYS = ["budget", "visits", "tier"]
KINDS = ["page_view", "email_open", "email_click", "demo_request"]
URLS = ["/pricing", "/PRICING/plans", "/blog/a_b", "/docs?x=50%", "/über", ""]
FORMS = ["Demo request", "newsletter", "Demo_request"]
CAMPAIGNS = ["Spring launch", "Webinar_50%"]
TEXT_FIELDS = [
    "title",
    "first_name",
    "last_name",
    "email",
    "company_name",
    "industry",
    "country",
    "city",
    "first_source",
    "latest_source",
    "quality",
    "company.industry",
    "company.country",
    "company.domain",
]
NUMBER_FIELDS = ["company_size", "company.employee_count", "company.annual_revenue"]
TEXT_OPS = [
    Operator.EQUALS,
    Operator.NOT_EQUALS,
    Operator.IN,
    Operator.NOT_IN,
    Operator.CONTAINS,
    Operator.NOT_CONTAINS,
    Operator.STARTS_WITH,
    Operator.EMPTY,
    Operator.NOT_EMPTY,
]
# Number fields: comparisons, presence and numeric lists. contains/starts-with
# on a number compare its text with "5.0" (scoring.fields.normalize_value turns
# the value into a float) and are left out until the engine decides their meaning.
NUMBER_OPS = [
    Operator.EQUALS,
    Operator.NOT_EQUALS,
    Operator.GT,
    Operator.GTE,
    Operator.LT,
    Operator.LTE,
    Operator.BETWEEN,
    Operator.IN,
    Operator.NOT_IN,
    Operator.EMPTY,
    Operator.NOT_EMPTY,
]
DOMAIN_PARTS = ["acme", "ACME.com", "gmail", ".com", "a_b", "a%b", "bücher", "sub.", "io"]

text = st.lists(st.sampled_from(ATOMS), max_size=3).map(" ".join)
small_points = st.sampled_from([-20, -10, -5, -1, 1, 2, 3, 5, 7, 10, 15, 30, 50])
points = st.one_of(small_points, small_points, st.integers(-1000, 1000))
# Custom attribute values: numbers, numeric-looking and other strings, yes/no, null.
custom_value = st.one_of(
    st.none(),
    st.integers(-1000, 5000),
    st.sampled_from([2.5, -3.75, 150.0, 0.0]),
    st.sampled_from(["150", "lots", "", " ", "VP", "中文", "50%", "a_b", "true", "2.5"]),
    st.text(alphabet="abxé中ü%_ 059", max_size=6),
    st.booleans(),
)
half_life = st.sampled_from([None, None, 1, 7, 30, 45])
# Rule kinds: at least two (one of them page_view, the commonest activity) so
# that rules meet activities often.
kinds = st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True).map(
    lambda k: sorted({*k, "page_view"})
)


def number_value(operator: str) -> st.SearchStrategy:
    number = st.one_of(
        st.integers(-10, 1200),
        st.sampled_from([0.5, 2.5, 150.0, 1500000.5, 250]),
        st.sampled_from([" 200 ", "10", "2.5", "-3", "250.00"]),
    )
    if operator in (Operator.EMPTY, Operator.NOT_EMPTY):
        return st.none()
    if operator in (Operator.IN, Operator.NOT_IN):
        return st.one_of(
            st.lists(number, min_size=1, max_size=3),
            st.lists(st.integers(0, 1200), min_size=1, max_size=3).map(
                lambda items: ", ".join(map(str, items))
            ),
        )
    if operator == Operator.BETWEEN:
        return st.one_of(
            st.lists(number, min_size=2, max_size=2),
            st.tuples(st.integers(-10, 1200), st.integers(-10, 1200)).map(
                lambda t: f"{t[0]}, {t[1]}"
            ),
        )
    return number


def ascii_case(value: str, change) -> str:
    """The value with its ASCII letters' case changed (text rules are case-insensitive)."""
    if change is None:
        return value
    return "".join(change(c) if c.isascii() else c for c in value)


def text_value(operator: str, seen: list[str]) -> st.SearchStrategy:
    """A rule value for a text operator; often one that some lead has."""
    if operator in (Operator.EMPTY, Operator.NOT_EMPTY):
        return st.none()
    atom = st.one_of(st.sampled_from([a for a in ATOMS if a.strip()]), st.sampled_from(seen))
    atom = st.tuples(
        atom.filter(lambda v: v.strip()), st.sampled_from([str.upper, str.lower, None])
    )
    atom = atom.map(lambda pair: ascii_case(*pair))
    if operator in (Operator.IN, Operator.NOT_IN):
        return st.one_of(
            st.lists(atom, min_size=1, max_size=3),
            st.lists(atom.filter(lambda v: "," not in v), min_size=1, max_size=3).map(", ".join),
        )
    return st.one_of(atom, st.sampled_from([5, "  VP  "]))


@st.composite
def conditions(draw, seen: list[str]) -> dict:
    """field/operator/value of a fit rule or a gate."""
    family = draw(st.sampled_from(["text", "text", "number", "custom", "domain", "bool"]))
    if family == "text":
        name, operator = draw(st.sampled_from(TEXT_FIELDS)), draw(st.sampled_from(TEXT_OPS))
        return {"field": name, "operator": operator, "value": draw(text_value(operator, seen))}
    if family == "number":
        name, operator = draw(st.sampled_from(NUMBER_FIELDS)), draw(st.sampled_from(NUMBER_OPS))
        return {"field": name, "operator": operator, "value": draw(number_value(operator))}
    if family == "custom":
        name = "custom." + draw(st.sampled_from([*CUSTOM_KEYS, "missing"]))
        operator = draw(st.sampled_from(TEXT_OPS + sorted(reference.NUMERIC_OPS)))
        value = (
            draw(number_value(operator))
            if operator in reference.NUMERIC_OPS
            else draw(text_value(operator, seen))
        )
        return {"field": name, "operator": operator, "value": value}
    if family == "domain":
        operator = draw(st.sampled_from(TEXT_OPS))
        if operator in (Operator.EQUALS, Operator.NOT_EQUALS):
            value = draw(st.sampled_from(DOMAIN_VALUES))
        elif operator in (Operator.IN, Operator.NOT_IN):
            value = draw(st.lists(st.sampled_from(DOMAIN_VALUES), min_size=1, max_size=3))
        else:
            value = draw(text_value(operator, DOMAIN_PARTS))
        return {"field": "email_domain", "operator": operator, "value": value}
    operator = draw(st.sampled_from([Operator.EQUALS, Operator.NOT_EQUALS]))
    value = draw(st.sampled_from(["yes", "no", True, False, "1", "0", "on"]))
    return {"field": "email_opt_in", "operator": operator, "value": value}


@st.composite
def engagement_rules(draw) -> dict:
    rule = {
        "kind": RuleKind.ENGAGEMENT,
        "activity_kinds": draw(st.one_of(kinds, kinds, kinds, st.just([]))),
        "min_count": draw(st.sampled_from([1, 1, 1, 0, 2, 3])),
        "window_days": draw(st.sampled_from([None, None, 1, 7, 30, 45])),
        # once / per occurrence / first only (both flags: first only wins)
        **draw(
            st.sampled_from([(False, False), (True, False), (False, True), (True, True)]).map(
                lambda flags: {"per_occurrence": flags[0], "first_only": flags[1]}
            )
        ),
        "max_points": draw(st.one_of(st.none(), st.integers(-60, 60))),
        "half_life_days": draw(half_life),
        "field": "",
        "operator": "",
        "value": None,
    }
    if draw(st.integers(0, 2)) == 0:  # a third of the rules filter on a property
        prop = draw(st.sampled_from(["url", "form", "campaign", "utm_source"]))
        operator = draw(st.sampled_from([*TEXT_OPS, ""]))
        pool = {"url": URLS, "form": FORMS, "campaign": CAMPAIGNS, "utm_source": ["ads"]}[prop]
        rule.update(field=prop, operator=operator)
        if operator:
            rule["value"] = draw(text_value(operator, [v for v in pool if v.strip()]))
    return rule


@st.composite
def activities(draw) -> dict:
    age = draw(
        st.one_of(
            st.sampled_from([0, DAY, 7 * DAY, 29 * DAY + DAY // 2, 30 * DAY, 45 * DAY, 60 * DAY]),
            st.integers(-3600, 120 * DAY),  # a little in the future, too: weight 1
        )
    )
    properties = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "url": st.sampled_from(URLS),
                "form": st.sampled_from(FORMS),
                "utm_source": st.sampled_from(["ads", "ADS", "news"]),
            },
        )
    )
    return {
        "kind": draw(st.sampled_from([*KINDS, "note"])),
        "occurred_at": NOW - timedelta(seconds=age),
        "properties": properties,
        "campaign": draw(st.sampled_from([None, *CAMPAIGNS])),
    }


@st.composite
def scenarios(draw) -> dict:
    companies = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "name": text,
                    "industry": text,
                    "country": st.sampled_from(COUNTRIES),
                    "domain": st.sampled_from([None, "acme.com", "Bücher.de", "a_b.io"]),
                    "employee_count": st.one_of(st.none(), st.integers(0, 1200)),
                    "annual_revenue": st.sampled_from(
                        [None, Decimal("0"), Decimal("250"), Decimal("1500000.50")]
                    ),
                }
            ),
            max_size=3,
            unique_by=lambda c: c["domain"] or object(),
        )
    )
    leads = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "email_domain": st.sampled_from([*DOMAINS, None]),
                    "title": text,
                    "first_name": text,
                    "last_name": st.sampled_from(["", "Müller", "O'Brien", "x"]),
                    "company_name": text,
                    "industry": text,
                    "country": st.sampled_from(COUNTRIES),
                    "city": st.sampled_from(["", "Berlin", "são paulo", "中文"]),
                    "first_source": st.sampled_from(["", "paid_search", "email"]),
                    "latest_source": st.sampled_from(["", "paid_search", "email"]),
                    "quality": st.sampled_from(QUALITIES),
                    "email_opt_in": st.booleans(),
                    "company_size": st.one_of(st.none(), st.integers(0, 1200)),
                    "company": st.one_of(st.none(), st.integers(0, 2)),
                    "custom": st.dictionaries(
                        st.sampled_from(CUSTOM_KEYS), custom_value, max_size=3
                    ),
                    "activities": st.one_of(
                        st.lists(activities(), max_size=2),
                        st.lists(activities(), min_size=3, max_size=10),
                    ),
                }
            ),
            min_size=1,
            max_size=6,
        )
    )
    seen = sorted(
        {lead[f] for lead in leads for f in ("title", "industry", "country") if lead[f].strip()}
    )
    seen = seen or ["vp"]
    groups = draw(
        st.lists(
            st.fixed_dictionaries(
                {"cap": st.one_of(st.none(), st.integers(0, 60)), "half_life_days": half_life}
            ),
            max_size=3,
        )
    )
    group_index = st.one_of(st.none(), st.integers(0, len(groups) - 1)) if groups else st.none()
    fit = st.builds(
        lambda cond, **kw: {"kind": RuleKind.FIT, **cond, **kw},
        conditions(seen),
        points=points,
        group=group_index,
        is_active=st.sampled_from([True, True, True, False]),
    )
    engagement = st.builds(
        lambda rule, **kw: {**rule, **kw},
        engagement_rules(),
        points=points,
        group=group_index,
        is_active=st.sampled_from([True, True, True, False]),
    )
    bands = st.one_of(
        st.just({"A": 40, "B": 25, "C": 10, "D": 0}),
        st.dictionaries(st.sampled_from(["A", "B", "C", "D"]), st.integers(-30, 60)),
    )
    return {
        "companies": companies,
        "leads": leads,
        "groups": groups,
        "rules": draw(st.lists(fit, max_size=6)) + draw(st.lists(engagement, max_size=6)),
        "gates": draw(
            st.lists(
                st.builds(
                    lambda cond, reason: {**cond, "reason": reason},
                    conditions(seen),
                    st.sampled_from(["Competitor", "Country not served", "Student ☂"]),
                ),
                max_size=2,
            )
        ),
        "settings": draw(
            st.fixed_dictionaries(
                {
                    "mql_threshold": st.integers(1, 150),
                    "min_fit_grade": st.sampled_from(["", "A", "B", "C", "D", "F"]),
                    "grade_bands": bands,
                    "temperature_bands": st.one_of(
                        st.just({"hot": 100, "warm": 40}),
                        st.fixed_dictionaries(
                            {"hot": st.integers(0, 150)}, optional={"warm": st.integers(-20, 60)}
                        ),
                    ),
                    "half_life_days": half_life,
                    "total_ceiling": st.one_of(st.none(), st.integers(1, 200)),
                }
            )
        ),
    }


# --- Building the rows ------------------------------------------------------------


def build(org, scenario: dict) -> tuple[dict, list[dict]]:
    """Create the scenario's rows in `org` (inside its scope); return the reference's inputs."""
    settings_row = ScoringSettings.objects.create(organization=org, **scenario["settings"])
    groups = ScoreGroup.objects.bulk_create(
        ScoreGroup(organization=org, name=f"Group {i}", **g)
        for i, g in enumerate(scenario["groups"])
    )
    group_dicts = [{"id": g.pk, "cap": g.cap, "half_life_days": g.half_life_days} for g in groups]
    rules = []
    for i, spec in enumerate(scenario["rules"]):
        spec = dict(spec)
        group = spec.pop("group")
        rules.append(
            ScoringRule(
                organization=org,
                name=f"Rule {i}",
                group=groups[group] if group is not None else None,
                **spec,
            )
        )
    rules = ScoringRule.objects.bulk_create(rules)
    gates = GatingRule.objects.bulk_create(
        GatingRule(organization=org, **g) for g in scenario["gates"]
    )
    campaigns = {
        c.name: c
        for c in Campaign.objects.bulk_create(Campaign(organization=org, name=n) for n in CAMPAIGNS)
    }
    companies = Company.objects.bulk_create(
        Company(organization=org, **c) for c in scenario["companies"]
    )
    leads, acts = [], []
    for i, spec in enumerate(scenario["leads"]):
        spec = dict(spec)
        domain, index, activity_specs = (
            spec.pop("email_domain"),
            spec.pop("company"),
            spec.pop("activities"),
        )
        company = companies[index] if index is not None and index < len(companies) else None
        identity = (
            {"email": f"lead{i}@{domain}"} if domain else {"email": "", "external_id": f"crm-{i}"}
        )
        leads.append(Lead(organization=org, company=company, **identity, **spec))
        acts.append(activity_specs)
    leads = Lead.objects.bulk_create(leads)
    Activity.objects.bulk_create(
        Activity(
            organization=org,
            lead=lead,
            kind=a["kind"],
            occurred_at=a["occurred_at"],
            properties=a["properties"],
            campaign=campaigns.get(a["campaign"]),
        )
        for lead, specs in zip(leads, acts, strict=True)
        for a in specs
    )
    config = {
        "settings": settings_row,
        "rules": [
            {
                **{f: getattr(r, f) for f in RULE_FIELDS},
                "id": r.pk,
                "group": group_dicts[groups.index(r.group)] if r.group else None,
            }
            for r in rules
        ],
        "gates": [g.__dict__ | {"id": g.pk} for g in gates],
    }
    lead_inputs = [
        {
            "id": lead.pk,
            **{f: getattr(lead, f) for f in LEAD_FIELDS},
            "company": None
            if lead.company is None
            else {f: getattr(lead.company, f) for f in COMPANY_FIELDS},
            "activities": specs,
        }
        for lead, specs in zip(leads, acts, strict=True)
    ]
    return config, lead_inputs


RULE_FIELDS = [
    "kind", "is_active", "points", "field", "operator", "value", "activity_kinds", "min_count",
    "window_days", "per_occurrence", "max_points", "first_only", "half_life_days",
]  # fmt: skip
LEAD_FIELDS = [
    "email", "title", "first_name", "last_name", "company_name", "industry", "country", "city",
    "first_source", "latest_source", "quality", "email_opt_in", "company_size", "custom",
]  # fmt: skip
COMPANY_FIELDS = ["industry", "country", "domain", "employee_count", "annual_revenue"]
STORED = [
    "fit_score", "engagement_score", "score", "grade", "band", "gating_reason", "mql_eligible",
    "score_breakdown", "scored_at", "mql_changed_at",
]  # fmt: skip


def build_other_org(other_org) -> list[dict]:
    """Org B: its own leads (same emails), activities and a rule that would score them all."""
    ScoringRule.objects.create(
        organization=other_org,
        name="B rule",
        kind=RuleKind.FIT,
        field="email",
        operator="not_empty",
        points=999,
    )
    leads = Lead.objects.bulk_create(
        Lead(
            organization=other_org,
            email=f"lead{i}@acme.com",
            title="VP Marketing",
            fit_score=3,
            engagement_score=4,
            score=7,
            grade="C",
            band="cold",
            score_breakdown={"r0": 7},
        )
        for i in range(3)
    )
    Activity.objects.bulk_create(
        Activity(organization=other_org, lead=lead, kind=kind, occurred_at=NOW)
        for lead in leads
        for kind in KINDS
    )
    return list(Lead.objects.values(*STORED).order_by("pk"))


# --- Comparing --------------------------------------------------------------------


def acceptable(raw: float, decays: bool) -> set[int]:
    """The stored integers a raw score may round to.

    Without decay every raw score is an integer sum: exactly one answer. With
    decay, weights are 0.5 ** (age / half-life) computed in SQL (SQLite derives
    ages from julianday() floats, PostgreSQL from epoch arithmetic), so a raw
    score that lies on a .5 boundary (e.g. 5 points at exactly one half-life =
    2.5) may land either side of it: both neighbours are accepted there, and only
    there (within 1e-6, far above the ~1e-9 error of the weights)."""
    if not decays:
        return {reference.half_up(raw)}
    return {math.floor(raw + 0.5 - 1e-6), math.floor(raw + 0.5 + 1e-6)}


def check_lead(row: dict, expected: reference.LeadScore, settings_row, decays: bool) -> None:
    where = f"lead {row['id']}: stored {row}, reference {expected}"
    assert row["fit_score"] in acceptable(expected.fit_raw, decays), where
    assert row["engagement_score"] in acceptable(expected.engagement_raw, decays), where
    assert row["score"] in acceptable(expected.total_raw, decays), where
    assert set(row["score_breakdown"]) == set(expected.breakdown_raw), where
    for name, raw in expected.breakdown_raw.items():
        assert row["score_breakdown"][name] in acceptable(raw, decays), (name, where)
    assert row["gating_reason"] == expected.gating_reason, where
    # Grade, band and MQL follow from the stored (rounded) numbers by the reference's rules.
    grade = reference.grade_for(row["fit_score"], settings_row)
    assert row["grade"] == grade, where
    assert row["band"] == reference.band_for(row["score"], settings_row), where
    assert row["mql_eligible"] == reference.mql_for(
        row["score"], grade, row["gating_reason"], settings_row
    ), where
    if not decays:
        assert (row["fit_score"], row["engagement_score"], row["score"]) == (
            expected.fit,
            expected.engagement,
            expected.total,
        ), where
        assert (row["grade"], row["band"], row["mql_eligible"]) == (
            expected.grade,
            expected.band,
            expected.mql,
        )
        assert row["score_breakdown"] == expected.breakdown, where
    assert row["scored_at"] == NOW, where


def decays(config: dict) -> bool:
    return any(
        reference.half_life(r, config["settings"])
        for r in config["rules"]
        if r["is_active"] and r["kind"] == RuleKind.ENGAGEMENT
    )


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(scenario=scenarios())
def test_engine_matches_reference(org, other_org, scenario):
    with transaction.atomic():
        try:
            run_scenario(org, other_org, scenario)
        finally:
            transaction.set_rollback(True)


def run_scenario(org, other_org, scenario: dict) -> None:
    with tenant_scope(other_org):
        other_before = build_other_org(other_org)
    with tenant_scope(org):
        config, lead_inputs = build(org, scenario)
        result = engine.rescore(organization_id=org.pk, now=NOW)
        rows = {row["id"]: row for row in Lead.objects.values("id", *STORED)}
        history = ScoreHistory.objects.count()
    expected = {
        lead["id"]: reference.score(
            lead=lead,
            rules=config["rules"],
            gates=config["gates"],
            settings=config["settings"],
            now=NOW,
        )
        for lead in lead_inputs
    }
    assert result.scored == len(lead_inputs) == len(rows)
    with_decay = decays(config)
    for lead_id, expectation in expected.items():
        check_lead(rows[lead_id], expectation, config["settings"], with_decay)
    # Every lead was unscored (no grade/band yet): each gets its first history row.
    assert history == len(rows)
    assert sorted(result.crossed_up) == sorted(i for i, r in rows.items() if r["mql_eligible"])
    assert result.crossed_down == []
    assert all(r["mql_changed_at"] == (NOW if r["mql_eligible"] else None) for r in rows.values())

    # The same rescore again changes nothing and records nothing.
    with tenant_scope(org):
        again = engine.rescore(organization_id=org.pk, now=NOW)
        assert {row["id"]: row for row in Lead.objects.values("id", *STORED)} == rows
        assert ScoreHistory.objects.count() == history
    assert again.crossed_up == again.crossed_down == []

    with tenant_scope(other_org):
        assert list(Lead.objects.values(*STORED).order_by("pk")) == other_before
        assert not ScoreHistory.objects.exists()


def test_generators_and_reference_cover_every_rule_field():
    """A field added to scoring.fields must be added here too, or it goes untested."""
    from scoring.fields import BOOL, FIELDS, NUMBER, TEXT

    kinds = {TEXT: reference.TEXT, NUMBER: reference.NUMBER, BOOL: reference.BOOL}
    assert {name: kinds[spec.kind] for name, spec in FIELDS.items()} == reference.FIELD_KINDS
    generated = {*TEXT_FIELDS, *NUMBER_FIELDS, "email_domain", "email_opt_in"}
    assert generated == set(FIELDS)
