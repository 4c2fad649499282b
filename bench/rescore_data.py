"""Data for bench/rescore.py: a realistic 20-rule configuration, leads and
activities generated inside PostgreSQL (INSERT … SELECT generate_series), and
the hand-written SQL floor that computes the same totals for those 20 rules.

Generated values are deterministic (hashint8 of the row number), so two runs
build the same tenant. PostgreSQL only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model

from leads.models import Activity, Company, Lead
from scoring.models import GatingRule, RuleKind, ScoreGroup, ScoringRule, ScoringSettings

ENG = RuleKind.ENGAGEMENT
GROUPS = {
    # name: (cap, half_life_days)
    "Web engagement": (40, None),
    "Email": (15, None),
    "Title": (25, None),
    "Company": (None, None),
    "Product": (30, 14),
}


def _fit(name: str, points: int, field: str, operator: str, value: Any, group: str = "") -> dict:
    return {"name": name, "points": points, "group": group, "field": field,
            "operator": operator, "value": value}  # fmt: skip


def _eng(name: str, points: int, kinds: list[str], group: str = "", **options: Any) -> dict:
    return {"name": name, "kind": ENG, "points": points, "group": group,
            "activity_kinds": kinds, **options}  # fmt: skip


# 11 fit + 9 engagement rules; the floor below is written by hand for exactly these.
RULES: list[dict[str, Any]] = [
    _fit("VP title", 10, "title", "contains", "vp", "Title"),
    _fit("Head of", 10, "title", "startswith", "head", "Title"),
    _fit("C-level", 15, "title", "in", ["CEO", "CTO", "CMO", "Founder"], "Title"),
    _fit("Intern", -10, "title", "contains", "intern", "Title"),
    _fit("Student", -15, "title", "contains", "student"),
    _fit("Country not served", -5, "country", "not_in", ["US", "CA", "GB", "DE", "FR"]),
    _fit("Size ≥ 200", 10, "company_size", "gte", 200, "Company"),
    _fit("Size 50–199", 5, "company_size", "between", [50, 199], "Company"),
    _fit("Frequent visitor", 5, "custom.visits", "gte", 10),
    _fit("Enterprise account", 10, "company.employee_count", "gte", 1000, "Company"),
    _fit("Junk data", -20, "quality", "eq", "junk"),
    _eng("Pricing viewed twice", 5, ["page_view"], "Web engagement", field="url",
         operator="contains", value="/pricing", min_count=2),
    _eng("Page view", 1, ["page_view"], "Web engagement", per_occurrence=True, max_points=20,
         window_days=90),
    _eng("Demo or trial", 50, ["demo_request", "trial_signup"]),
    _eng("Email open (first)", 1, ["email_open"], "Email", first_only=True),
    _eng("Email click", 2, ["email_click"], "Email", per_occurrence=True, max_points=10),
    _eng("Unsubscribed", -20, ["email_unsubscribe"]),
    _eng("Webinar or download", 10, ["webinar", "content_download"], per_occurrence=True,
         max_points=20, window_days=180),
    _eng("Contact form", 15, ["form_submit"], field="form", operator="eq", value="contact",
         half_life_days=7),
    _eng("Product usage", 3, ["product_event"], "Product", per_occurrence=True, max_points=30),
]  # fmt: skip
SETTINGS = {"mql_threshold": 60, "half_life_days": 30, "total_ceiling": 200}
GATE = {"reason": "Country not served", "field": "country", "operator": "eq", "value": "KP"}


def install_rules(organization) -> None:
    """The 20 rules, their groups, one gate and the settings (inside the org's scope)."""
    ScoringSettings.objects.create(organization=organization, **SETTINGS)
    groups = {
        name: ScoreGroup.objects.create(
            organization=organization, name=name, cap=cap, half_life_days=half
        )
        for name, (cap, half) in GROUPS.items()
    }
    for position, spec in enumerate(RULES):
        spec = dict(spec)
        group = groups.get(spec.pop("group"))
        ScoringRule.objects.create(
            organization=organization,
            kind=spec.pop("kind", RuleKind.FIT),
            group=group,
            position=position,
            **spec,
        )
    GatingRule.objects.create(organization=organization, **GATE)


# --- Generated rows ---------------------------------------------------------------

TITLES = [
    "VP Marketing", "Marketing Manager", "Head of Growth", "CEO", "CTO", "Founder",
    "Software Engineer", "Marketing Intern", "Student", "Director of IT", "Sales Manager",
    "Data Analyst", "vp of sales", "Product Manager", "Consultant", "",
]  # fmt: skip
COUNTRIES = ["US", "US", "DE", "GB", "FR", "CA", "IN", "BR", "KP", ""]
DOMAINS = ["gmail.com", "acme.com", "globex.example", "initech.example", "umbrella.example"]
URLS = [
    "/pricing",
    "/pricing/enterprise",
    "/blog/lead-scoring",
    "/docs/api",
    "/docs/start",
    "/features",
    "/",
]
FORMS = ["contact", "newsletter", "Demo request"]
# Activity kinds by share of 100 (page views dominate, demo requests are rare).
KIND_SHARES = [
    ("page_view", 50), ("email_open", 15), ("email_click", 10), ("form_submit", 5),
    ("demo_request", 3), ("trial_signup", 1), ("webinar", 3), ("content_download", 2),
    ("email_unsubscribe", 1), ("product_event", 8), ("note", 2),
]  # fmt: skip


def _array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def _pick(values: list[str], salt: int) -> str:
    return f"({_array(values)})[1 + (abs(hashint8(i * 97 + {salt})) %% {len(values)})]"


def _hash(salt: int, modulo: int) -> str:
    return f"(abs(hashint8(i * 97 + {salt})) %% {modulo})"


def _kind_case() -> str:
    bucket, low, whens = _hash(11, 100), 0, []
    for kind, share in KIND_SHARES:
        whens.append(f"WHEN {bucket} < {low + share} THEN '{kind}'")
        low += share
    return "CASE " + " ".join(whens) + " END"


def _insert(
    model: type[Model], start: int, count: int, exprs: dict[str, str], params: dict[str, Any]
) -> None:
    """INSERT … SELECT over generate_series(start, start + count - 1) AS g(i).

    Every concrete column gets a value: the given SQL expression, else NULL for a
    nullable field, else the field's default (so later model fields keep working)."""
    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.name in exprs:
            values.append(exprs[field.name])
        elif field.null:
            values.append("NULL")
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            values.append("%(now)s")
        elif field.get_default() is not None:  # a declared default, or "" for text
            key = f"default_{field.name}"
            params[key] = field.get_db_prep_save(field.get_default(), connection)
            values.append(f"%({key})s")
        else:
            raise RuntimeError(f"bench: no value for {model.__name__}.{field.name}")
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) SELECT {', '.join(values)}"
        f" FROM generate_series(%(start)s::bigint, %(end)s::bigint) AS g(i)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {**params, "start": start, "end": start + count - 1})


def id_range(model: type[Model], organization_id: int) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT MIN(id), MAX(id), COUNT(*) FROM {model._meta.db_table}"
            " WHERE organization_id = %s",
            [organization_id],
        )
        lo, hi, n = cursor.fetchone()
    assert hi - lo + 1 == n, "bench expects contiguous ids (no concurrent writers)"
    return lo, hi


def add_companies(*, organization_id: int, start: int, count: int, now: datetime) -> None:
    _insert(
        Company,
        start,
        count,
        {
            "organization": "%(org)s",
            "name": "'Company ' || i",
            "domain": "'company' || i || '.example'",
            "industry": _pick(["Software", "Retail", "Education", "Health care"], 1),
            "employee_count": f"CASE WHEN {_hash(2, 4)} = 0 THEN NULL ELSE {_hash(3, 5000)} END",
        },
        {"org": organization_id, "now": now},
    )


def add_leads(
    *, organization_id: int, start: int, count: int, companies: tuple[int, int], now: datetime
) -> None:
    """Leads numbered start… (unique emails); 60% belong to one of `companies`."""
    c_lo, c_hi = companies
    _insert(
        Lead,
        start,
        count,
        {
            "organization": "%(org)s",
            "email": f"'lead' || i || '@' || {_pick(DOMAINS, 1)}",
            "first_name": "'Lead'",
            "last_name": "'No. ' || i",
            "title": _pick(TITLES, 2),
            "country": _pick(COUNTRIES, 3),
            "company_size": f"CASE WHEN {_hash(4, 5)} = 0 THEN NULL ELSE {_hash(5, 3000)} END",
            "company": (
                f"CASE WHEN {_hash(6, 10)} < 6 THEN {c_lo} + {_hash(7, c_hi - c_lo + 1)} END"
            ),
            "company_name": "'Company ' || i",
            "custom": (
                f"CASE WHEN {_hash(8, 3)} = 0 THEN jsonb_build_object('visits', 'lots')"
                f" ELSE jsonb_build_object('visits', {_hash(9, 40)}) END"
            ),
            "quality": f"CASE WHEN {_hash(10, 50)} = 0 THEN 'junk' ELSE 'ok' END",
        },
        {"org": organization_id, "now": now},
    )


def add_activities(
    *, organization_id: int, start: int, count: int, leads: tuple[int, int], now: datetime
) -> None:
    """Activities spread uniformly over `leads`, up to a year old."""
    lo, hi = leads
    kind = _kind_case()
    _insert(
        Activity,
        start,
        count,
        {
            "organization": "%(org)s",
            "lead": f"{lo} + {_hash(12, hi - lo + 1)}",
            "kind": kind,
            "occurred_at": f"%(now)s - make_interval(secs => {_hash(13, 365 * 86400)})",
            "properties": (
                f"CASE {kind}"
                f" WHEN 'page_view' THEN jsonb_build_object('url', {_pick(URLS, 14)})"
                f" WHEN 'form_submit' THEN jsonb_build_object('form', {_pick(FORMS, 15)})"
                " ELSE '{}'::jsonb END"
            ),
        },
        {"org": organization_id, "now": now},
    )


# --- The floor: the same totals, by hand ------------------------------------------------

_AGE = "GREATEST(EXTRACT(EPOCH FROM (%(now)s::timestamptz - occurred_at)) / 86400.0, 0)"
_URL = "LOWER(COALESCE(a.properties ->> 'url', ''))"
_FORM = "LOWER(COALESCE(a.properties ->> 'form', ''))"
_TITLE = "LOWER(COALESCE(l.title, ''))"

FLOOR_SQL = f"""
WITH e AS (
    SELECT a.lead_id,
        COUNT(*) FILTER (WHERE a.kind = 'page_view' AND {_URL} LIKE '%%/pricing%%') AS pricing_n,
        MAX(a.w30) FILTER (WHERE a.kind = 'page_view' AND {_URL} LIKE '%%/pricing%%') AS pricing,
        SUM(a.w30) FILTER (WHERE a.kind = 'page_view' AND a.occurred_at >= %(since90)s) AS views,
        MAX(a.w30) FILTER (WHERE a.kind IN ('demo_request', 'trial_signup')) AS demo,
        MIN(a.w30) FILTER (WHERE a.kind = 'email_open') AS first_open,
        SUM(a.w30) FILTER (WHERE a.kind = 'email_click') AS clicks,
        MAX(a.w30) FILTER (WHERE a.kind = 'email_unsubscribe') AS unsubscribed,
        SUM(a.w30) FILTER (WHERE a.kind IN ('webinar', 'content_download')
                           AND a.occurred_at >= %(since180)s) AS content,
        MAX(a.w7) FILTER (WHERE a.kind = 'form_submit' AND {_FORM} = 'contact') AS contact,
        SUM(a.w14) FILTER (WHERE a.kind = 'product_event') AS product
    FROM (
        SELECT lead_id, kind, properties, occurred_at,
            POWER(0.5::float8, {_AGE} / 30.0::float8) AS w30,
            POWER(0.5::float8, {_AGE} / 7.0::float8) AS w7,
            POWER(0.5::float8, {_AGE} / 14.0::float8) AS w14
        FROM leads_activity WHERE organization_id = %(org)s
    ) a
    GROUP BY a.lead_id
)
UPDATE leads_lead AS target SET score = FLOOR(LEAST(s.fit + s.eng, 200) + 0.5)::int
FROM (
    SELECT l.id,
        LEAST(
            (CASE WHEN {_TITLE} LIKE '%%vp%%' THEN 10 ELSE 0 END)
            + (CASE WHEN {_TITLE} LIKE 'head%%' THEN 10 ELSE 0 END)
            + (CASE WHEN {_TITLE} IN ('ceo', 'cto', 'cmo', 'founder') THEN 15 ELSE 0 END)
            + (CASE WHEN {_TITLE} LIKE '%%intern%%' THEN -10 ELSE 0 END), 25)
        + (CASE WHEN {_TITLE} LIKE '%%student%%' THEN -15 ELSE 0 END)
        + (CASE WHEN LOWER(COALESCE(l.country, '')) NOT IN ('us', 'ca', 'gb', 'de', 'fr')
           THEN -5 ELSE 0 END)
        + (CASE WHEN l.company_size >= 200 THEN 10 ELSE 0 END)
        + (CASE WHEN l.company_size BETWEEN 50 AND 199 THEN 5 ELSE 0 END)
        + (CASE WHEN c.employee_count >= 1000 THEN 10 ELSE 0 END)
        + (CASE WHEN jsonb_typeof(l.custom -> 'visits') = 'number'
                 AND (l.custom ->> 'visits')::float8 >= 10 THEN 5 ELSE 0 END)
        + (CASE WHEN LOWER(l.quality) = 'junk' THEN -20 ELSE 0 END) AS fit,
        LEAST((CASE WHEN e.pricing_n >= 2 THEN 5 * e.pricing ELSE 0 END)
              + LEAST(COALESCE(e.views, 0), 20), 40)
        + 50 * COALESCE(e.demo, 0)
        + LEAST(COALESCE(e.first_open, 0) + LEAST(2 * COALESCE(e.clicks, 0), 10), 15)
        - 20 * COALESCE(e.unsubscribed, 0)
        + LEAST(10 * COALESCE(e.content, 0), 20)
        + 15 * COALESCE(e.contact, 0)
        + LEAST(LEAST(3 * COALESCE(e.product, 0), 30), 30) AS eng
    FROM leads_lead l
    LEFT JOIN leads_company c ON c.id = l.company_id
    LEFT JOIN e ON e.lead_id = l.id
    WHERE l.organization_id = %(org)s
) s
WHERE target.id = s.id
"""
