"""The scoring engine's compiler: rules become SQL expressions on Lead, so
scoring one lead and scoring a whole tenant run the same statements with a
different filter. `scores_sql` is the SELECT of new scores that the write seam
(scoring.engine.apply) stores.

A rescore is a constant number of statements whatever the number of leads or
rules: load the configuration (3 queries), materialize the new scores of the
selected leads in a temporary table (one SELECT … GROUP BY over their
activities), write a ScoreHistory row where band/grade/MQL eligibility changed,
update the leads from the table, read back who crossed the MQL threshold.

Scoring rules (the reference evaluator in tests/scoring mirrors this):
- fit rule: `points` when its condition holds; never decays;
- engagement rule: matching activities (kinds, optional property filter, optional
  window); counted only when at least `min_count` match. Each activity weighs
  0.5 ** (age_days / half_life) (1 without decay). Once-rules score
  points × the weight of the newest match, per-occurrence rules points × the sum
  of weights, first-only rules points × the weight of the first match; then
  `max_points` caps the contribution (towards zero for negative rules);
- group caps limit the sum of a group's fit part and of its engagement part;
  the total is fit + engagement, limited by the optional ceiling; scores are
  rounded half up (floor(x + 0.5)) when stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import (
    Case,
    Count,
    Expression,
    F,
    FloatField,
    Func,
    IntegerField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Power
from django.utils import timezone

from leadflow.core.server_prepared import PLACEHOLDER
from leads.models import Activity, Lead
from scoring import fields as F_
from scoring.models import (
    GatingRule,
    PostQualificationField,
    RuleKind,
    ScoringRule,
    ScoringSettings,
)

logger = logging.getLogger(__name__)

GRADES = ["A", "B", "C", "D"]  # ordered best first; below D is F


class AgeDays(Func):
    """Days between an activity and `now`, never negative."""

    output_field = FloatField()

    def __init__(self, expression, now: datetime):
        self.now = now
        super().__init__(expression)

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        # EXTRACT returns numeric on PostgreSQL 14+; double precision keeps the
        # decay arithmetic in fast floating point (6x faster on a full rescore).
        return (
            f"GREATEST(EXTRACT(EPOCH FROM (%s - {sql}))::double precision / 86400.0, 0)",
            [self.now, *params],
        )

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        now = connection.ops.adapt_datetimefield_value(self.now)
        return f"MAX(julianday(%s) - julianday({sql}), 0)", [now, *params]


@dataclass
class Config:
    settings: ScoringSettings
    rules: list[ScoringRule]
    gates: list[GatingRule]
    # The few-lead SELECT compiled once for this configuration (see few_leads_sql).
    compiled: list[str | datetime | _LeadIds] | None = field(
        default=None, compare=False, repr=False
    )
    # Its text with the lead ids and times as bound parameters (%s).
    bound: str | None = field(default=None, compare=False, repr=False)
    # The same over a lead not inserted yet (new_lead_sql); "" when it can't be.
    unborn: str | None = field(default=None, compare=False, repr=False)


_ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)  # `now` while compiling the template


class _LeadIds(list):
    """Marks the parameter that holds the lead ids in a compiled template."""


def few_leads_sql(
    config: Config, lead_ids: list[int], now: datetime, *, bound: bool = False
) -> tuple[str, list | None]:
    """`scores_sql` over the given leads, compiled once per configuration.

    Building the SELECT through the ORM costs more than running it for one lead,
    so the text is compiled once (on PostgreSQL) with the leads as one array
    parameter and `now` at a fixed anchor. Every other parameter is a constant
    of the configuration and is written into the text then (as the driver
    would quote it); each call only writes in its lead ids and every datetime
    parameter — `now` and the windows' cut-offs, the only datetimes there (rule
    values are text, numbers and booleans) — moved by the same offset. The
    result is complete SQL with no parameters (None: nothing for the driver to
    merge, so "%" is an ordinary character in it). Elsewhere the SELECT is
    simply built each time.

    `bound`: the same text with those slots as parameters instead, constant per
    configuration, for a statement prepared on the server
    (leadflow.core.server_prepared)."""
    if connection.vendor != "postgresql":
        leads = Lead.objects.filter(pk__in=lead_ids)
        activities = Activity.objects.filter(lead_id__in=lead_ids)
        return scores_sql(config, leads, now, activities=activities)
    if config.compiled is None:
        marker = _LeadIds()
        leads = Lead.objects.extra(where=["leads_lead.id = ANY(%s)"], params=[marker])
        activities = Activity.objects.extra(
            where=["leads_activity.lead_id = ANY(%s)"], params=[marker]
        )
        config.compiled = _inline_constants(
            *scores_sql(config, leads, _ANCHOR, activities=activities)
        )
    shift = now - _ANCHOR
    if bound:
        from psycopg.types.numeric import Int8  # one parameter type, so one statement

        if config.bound is None:
            config.bound = "".join(
                part.replace("%", "%%") if isinstance(part, str) else "%s"
                for part in config.compiled
            )
        values = [
            [Int8(i) for i in lead_ids] if isinstance(part, _LeadIds) else part + shift
            for part in config.compiled
            if not isinstance(part, str)
        ]
        return config.bound, values
    ids = sql_bigint_array(lead_ids)
    sql = "".join(
        part
        if isinstance(part, str)
        else ids
        if isinstance(part, _LeadIds)
        else sql_timestamp(part + shift)
        for part in config.compiled
    )
    return sql, None


# new_lead_sql: where the compiled SELECT reads the lead and its activities.
_LEAD_TABLE, _ACTIVITY_TABLE = 'FROM "leads_lead"', 'FROM "leads_activity"'
UNBORN_LEAD, UNBORN_ACTIVITIES, UNBORN_ID = "nl", "na", "(SELECT id FROM nid)"
_SLOT = "\x00"  # marks a slot while the text is rewritten (no SQL text holds NUL)


def new_lead_sql(config: Config, now: datetime) -> tuple[str, list] | None:
    """`few_leads_sql` (bound) over one lead that the same statement is about
    to insert: it reads the lead's row from the CTE `nl` and its activities
    from `na` (each with every column of its table), and the lead's id from
    `nid`. None when the compiled SELECT reads another table (a rule on the
    lead's company: a company inserted by the same statement is not visible to
    it) or does not read each table once; the caller then inserts and scores
    in two statements."""
    few_leads_sql(config, [], now, bound=True)  # compiles the template
    if config.unborn is None:
        assert config.compiled is not None
        text = "".join(
            part.replace("%", "%%") if isinstance(part, str) else _SLOT for part in config.compiled
        )
        plain = text.replace(_SLOT, "")
        shape_ok = (
            plain.count(_LEAD_TABLE) == 1
            and plain.count(_ACTIVITY_TABLE) <= 1
            and plain.count('"leads_')
            == plain.count('"leads_lead"') + plain.count('"leads_activity"')
        )
        if not shape_ok:
            config.unborn = ""
        else:
            slots = [p for p in config.compiled if not isinstance(p, str)]
            pieces = text.split(_SLOT)
            out = [pieces[0]]
            for slot, piece in zip(slots, pieces[1:], strict=True):
                out += [f"ARRAY[{UNBORN_ID}]::bigint[]" if isinstance(slot, _LeadIds) else "%s"]
                out.append(piece)
            config.unborn = (
                "".join(out)
                .replace(_LEAD_TABLE, f'FROM {UNBORN_LEAD} "leads_lead"')
                .replace(_ACTIVITY_TABLE, f'FROM {UNBORN_ACTIVITIES} "leads_activity"')
            )
    if not config.unborn:
        return None
    assert config.compiled is not None
    shift = now - _ANCHOR
    times = [p + shift for p in config.compiled if isinstance(p, datetime)]
    return config.unborn, times


def _inline_constants(sql: str, params: list) -> list[str | datetime | _LeadIds]:
    """The SQL as text parts with the constant parameters written in (quoted by
    the driver's own literal quoting), split at the lead-id and datetime slots."""
    from psycopg.sql import Literal

    connection.ensure_connection()
    raw = connection.connection
    values = iter(params)
    parts: list[str | datetime | _LeadIds] = []
    text: list[str] = []
    position = 0
    for match in PLACEHOLDER.finditer(sql):
        text.append(sql[position : match.start()])
        position = match.end()
        if match.group() == "%%":
            text.append("%")
            continue
        value = next(values)
        if isinstance(value, _LeadIds | datetime):
            parts += ["".join(text), value]
            text = []
        else:
            text.append(Literal(value).as_string(raw))
    text.append(sql[position:])
    parts.append("".join(text))
    if next(values, None) is not None:
        raise ValueError("More parameters than placeholders in the scores SELECT")
    return parts


def sql_bigint_array(ids: Iterable[int]) -> str:
    """Ids as a PostgreSQL bigint[] literal (ints only: nothing to quote)."""
    return f"ARRAY[{','.join(str(int(i)) for i in ids)}]::bigint[]"


def sql_timestamp(value: datetime) -> str:
    """An aware datetime as a PostgreSQL timestamptz literal (digits and signs only)."""
    if value.tzinfo is None:
        raise ValueError("A naive datetime has no place in the scores SELECT")
    return f"'{value.astimezone(UTC).isoformat()}'::timestamptz"


def load_config(*, organization_id: int) -> Config:
    settings, _ = ScoringSettings.objects.get_or_create(organization_id=organization_id)
    # Fields sales fills in after qualifying never score (marking one switches
    # its rules off; a rule switched back on another way is left out here too).
    post_qualification = PostQualificationField.objects.values("field")
    rules = (
        ScoringRule.objects.filter(is_active=True)
        .exclude(kind=RuleKind.FIT, field__in=post_qualification)
        .select_related("group")
        .order_by("pk")
    )
    gates = GatingRule.objects.filter(is_active=True).order_by("pk")
    return Config(
        settings=settings,
        rules=[r for r in rules if compiles(r)],
        gates=[g for g in gates if compiles(g)],
    )


def compiles(rule: ScoringRule | GatingRule) -> bool:
    """The forms refuse a rule that cannot compile, but one written another way
    (admin, shell, an older version's data) must not break every rescore of
    the tenant: it is left out, and said so in the log."""
    try:
        if isinstance(rule, ScoringRule) and rule.kind == RuleKind.ENGAGEMENT:
            activity_filter(rule, timezone.now())
        else:
            F_.condition(rule.field, rule.operator, rule.value)
    except (F_.RuleError, ValueError, TypeError) as exc:
        logger.warning(
            "Skipping %s %s that does not compile: %s", type(rule).__name__, rule.pk, exc
        )
        return False
    return True


def _fval(x: float) -> Value:
    return Value(float(x), output_field=FloatField())


def activity_filter(rule: ScoringRule, now: datetime, prefix: str = "activities__") -> Q:
    """The activities a rule counts; `prefix` is the path from the queried model
    ("activities__" from Lead, "" on Activity itself)."""
    q = Q(**{f"{prefix}kind__in": list(rule.activity_kinds or [])})
    if rule.window_days:
        q &= Q(**{f"{prefix}occurred_at__gte": now - timedelta(days=rule.window_days)})
    if rule.field:
        q &= property_condition(rule.field, rule.operator, rule.value, prefix=prefix)
    return q


def property_condition(key: str, operator: str, value, prefix: str = "activities__") -> Q:
    """A filter on an activity's properties (url, form, utm_*) or its campaign name."""
    if key == "campaign":
        expr = F(f"{prefix}campaign__name")
    else:
        if not F_.CUSTOM_KEY.match(key):
            raise F_.RuleError(f"Invalid property name {key!r}.")
        expr = KeyTextTransform(key, f"{prefix}properties")
    if operator in F_.NUMERIC_OPS:
        raise F_.RuleError("Activity properties are compared as text.")
    value = F_.normalize_value("custom.x", operator, value) if operator else None
    if operator in F_.NO_VALUE_OPS or not operator:
        return Q() if not operator else F_._text(expr, operator, None)
    return F_._text(expr, operator, value)


def _half_life(rule: ScoringRule, settings: ScoringSettings) -> float | None:
    return (
        rule.half_life_days
        or (rule.group and rule.group.half_life_days)
        or (settings.half_life_days)
    )


def _counts_activities(rule: ScoringRule) -> bool:
    # An engagement rule without activity kinds matches nothing.
    return rule.kind == RuleKind.ENGAGEMENT and bool(rule.activity_kinds)


def _activity_aggregates(config: Config, activities: QuerySet[Activity], now: datetime):
    """One row per lead with, per engagement rule, the count (c<id>) and the
    weight aggregate (w<id>) of its matching activities."""
    rules = [r for r in config.rules if _counts_activities(r)]
    if not rules:
        return None
    kinds = sorted({k for r in rules for k in (r.activity_kinds or [])})
    ann: dict[str, Expression] = {}
    for rule in rules:
        q = activity_filter(rule, now, prefix="")
        half_life = _half_life(rule, config.settings)
        weight = (
            Power(_fval(0.5), AgeDays(F("occurred_at"), now) / _fval(half_life))
            if half_life
            else _fval(1.0)
        )
        agg = Min if rule.first_only else Sum if rule.per_occurrence else Max
        ann[f"c{rule.pk}"] = Count("pk", filter=q)
        ann[f"w{rule.pk}"] = agg(weight, filter=q)
    return (
        activities.filter(kind__in=kinds)
        .order_by()
        .values("lead_id")
        .annotate(**ann)
        .values("lead_id", *ann)
    )


class _Sql:
    """The few scalar SQL spellings that differ between PostgreSQL and SQLite.
    Only numbers from the configuration are formatted into SQL, never text."""

    def __init__(self) -> None:
        self.pg = connection.vendor == "postgresql"

    def num(self, x: float) -> str:
        return f"{float(x)!r}::double precision" if self.pg else repr(float(x))

    def least(self, *args: str) -> str:
        return f"{'LEAST' if self.pg else 'MIN'}({', '.join(args)})"

    def greatest(self, *args: str) -> str:
        return f"{'GREATEST' if self.pg else 'MAX'}({', '.join(args)})"

    def round(self, expr: str) -> str:
        return f"CAST(FLOOR({expr} + 0.5) AS INTEGER)"

    def json_object(self, pairs: list[tuple[str, str]]) -> str:
        if not pairs:
            return "'{}'::jsonb" if self.pg else "json('{}')"
        # Functions take at most 100 arguments on PostgreSQL: merge chunks.
        chunks = [pairs[i : i + 40] for i in range(0, len(pairs), 40)]
        func = "jsonb_build_object" if self.pg else "json_object"
        parts = [func + "(" + ", ".join(f"'{k}', {v}" for k, v in c) + ")" for c in chunks]
        if self.pg:
            return " || ".join(parts)
        out = parts[0]
        for part in parts[1:]:
            out = f"json_patch({out}, {part})"
        return out


def _rule_value(rule: ScoringRule, sql: _Sql) -> str:
    """Points a rule gives a lead, from its lead-level (f<id>) or aggregated
    (c<id>, w<id>) columns."""
    if rule.kind == RuleKind.FIT:
        return f"l.f{rule.pk}"
    if not _counts_activities(rule):
        return sql.num(0)
    raw = f"{sql.num(rule.points)} * COALESCE(a.w{rule.pk}, 0)"
    if rule.max_points is not None:
        limit = abs(rule.max_points)
        raw = (
            sql.least(raw, sql.num(limit))
            if rule.points >= 0
            else sql.greatest(raw, sql.num(-limit))
        )
    least_count = max(int(rule.min_count), 1)
    return f"CASE WHEN COALESCE(a.c{rule.pk}, 0) >= {least_count} THEN {raw} ELSE 0 END"


def _part(config: Config, kind: str, sql: _Sql) -> str:
    """Fit or engagement score: group sums capped, plus ungrouped rules."""
    groups: dict[object, list[ScoringRule]] = {}
    for rule in config.rules:
        if rule.kind == kind:
            groups.setdefault(rule.group, []).append(rule)
    parts = []
    for group, rules in groups.items():
        total = " + ".join(f"r{r.pk}" for r in rules)
        if group is not None and group.cap is not None:
            total = sql.least(total, sql.num(group.cap))
        parts.append(f"({total})")
    return " + ".join(parts) or sql.num(0)


def _lead_level(config: Config, leads: QuerySet[Lead], match_rule: ScoringRule | None):
    """The per-lead (not aggregated) inputs: fit rule points, gate, previous values."""
    ann: dict[str, Expression] = {}
    for rule in config.rules:
        if rule.kind == RuleKind.FIT:
            cond = F_.condition(rule.field, rule.operator, rule.value)
            ann[f"f{rule.pk}"] = Case(When(cond, then=_fval(rule.points)), default=_fval(0))
    ann["gate"] = Case(
        *[
            When(F_.condition(g.field, g.operator, g.value), then=Value(g.reason[:200]))
            for g in config.gates
        ],
        default=Value(""),
    )
    # Discarded junk and leads merged into another never qualify.
    ann["live"] = Case(
        When(Q(discarded_at__isnull=True, merged_into__isnull=True), then=Value(1)),
        default=Value(0),
        output_field=IntegerField(),
    )
    if match_rule is not None and match_rule.kind == RuleKind.FIT:
        cond = F_.condition(match_rule.field, match_rule.operator, match_rule.value)
        ann["fit_match"] = Case(
            When(cond, then=Value(1)), default=Value(0), output_field=IntegerField()
        )
    return leads.annotate(**ann).values(
        *ann,
        lid=F("pk"),
        old_grade=F("grade"),
        old_band=F("band"),
        old_mql=F("mql_eligible"),
    )


def scores_sql(
    config: Config,
    leads: QuerySet[Lead],
    now: datetime,
    *,
    activities: QuerySet[Activity] | None = None,
    match_rule: ScoringRule | None = None,
    rule_columns: bool = False,
) -> tuple[str, list]:
    """A SELECT of the new scores of `leads`: lid, new_fit, new_eng, new_total,
    new_grade, new_band, new_gate, new_mql, new_breakdown, old_grade, old_band,
    old_mql (and sim_match, 1 when `match_rule`'s condition holds; with
    `rule_columns`, each rule's unrounded points as r<rule pk>).

    Activities are aggregated per lead on their own (narrow rows, one pass) and
    joined to the leads 1:1; the totals are computed over those columns in an
    outer SELECT, so no rule's expression is evaluated twice. `activities` must
    cover the activities of `leads` (default: a semi-join on them)."""
    sql = _Sql()
    s = config.settings
    lead_sql, params = _lead_level(config, leads, match_rule).query.sql_with_params()
    params = list(params)
    if activities is None:
        activities = Activity.objects.filter(lead_id__in=leads.values("pk"))
    agg = _activity_aggregates(config, activities, now)
    source, with_ = f"({lead_sql}) l", ""
    if agg is not None:
        agg_sql, agg_params = agg.query.sql_with_params()
        # Materialized: aggregated once, whatever plan the join gets (a nested
        # loop over a stale-statistics estimate would re-aggregate per lead).
        with_ = f"WITH a AS {'MATERIALIZED ' if sql.pg else ''}({agg_sql}) "
        source += " LEFT JOIN a ON a.lead_id = l.lid"
        params = [*agg_params, *params]

    rule_cols = [f"{_rule_value(r, sql)} AS r{r.pk}" for r in config.rules]
    match = ""
    if match_rule is not None:
        match = (
            ", l.fit_match AS sim_match"
            if match_rule.kind == RuleKind.FIT
            else ", 0 AS sim_match"
            if not _counts_activities(match_rule)
            else f", CASE WHEN COALESCE(a.c{match_rule.pk}, 0) >= "
            f"{max(int(match_rule.min_count), 1)} THEN 1 ELSE 0 END AS sim_match"
        )
    # Level 1: each rule's points per lead.
    level1 = (
        "SELECT l.lid, l.old_grade, l.old_band, l.old_mql, l.gate, l.live"
        f"{''.join(', ' + c for c in rule_cols)}{match} FROM {source}"
    )
    rule_names = [f"r{r.pk}" for r in config.rules]
    keep = ["lid", "old_grade", "old_band", "old_mql", "gate", "live", *rule_names]
    if match_rule is not None:
        keep.append("sim_match")
    # Level 2: rounded fit / engagement / total. OFFSET 0 keeps PostgreSQL from
    # inlining the level-1 expressions into every reference above.
    fit, eng = _part(config, RuleKind.FIT, sql), _part(config, RuleKind.ENGAGEMENT, sql)
    total = f"({fit}) + ({eng})"
    if s.total_ceiling:
        total = sql.least(total, sql.num(s.total_ceiling))
    # SQLite flattens the subquery and evaluates each rule's expression again at
    # every reference (110-217 s for 120 rules on 9k leads); LIMIT -1 OFFSET 0
    # keeps it a materialized subquery (about 3 s).
    fence = " OFFSET 0" if sql.pg else " LIMIT -1 OFFSET 0"
    level2 = (
        f"SELECT {', '.join(keep)}, {sql.round(fit)} AS new_fit, {sql.round(eng)} AS new_eng,"
        f" {sql.round(total)} AS new_total FROM ({level1}) x{fence}"
    )
    # Level 3: grade, band, MQL eligibility and the breakdown.
    bands = s.grade_bands or {}
    grade = " ".join(
        f"WHEN new_fit >= {int(bands[g])} THEN '{g}'" for g in GRADES if bands.get(g) is not None
    )
    grade = f"CASE {grade} ELSE 'F' END" if grade else "'F'"
    temps = s.temperature_bands or {}
    band = (
        f"CASE WHEN new_total >= {int(temps.get('hot', 100))} THEN 'hot'"
        f" WHEN new_total >= {int(temps.get('warm', 40))} THEN 'warm' ELSE 'cold' END"
    )
    mql = [f"new_total >= {int(s.mql_threshold)}", "gate = ''", "live = 1"]
    if s.min_fit_grade and s.min_fit_grade in GRADES:
        ok = GRADES[: GRADES.index(s.min_fit_grade) + 1]
        mql.append(f"({grade}) IN ({', '.join(repr(g) for g in ok)})")
    breakdown = sql.json_object([(n, sql.round(n)) for n in rule_names])
    columns = [
        "lid", "new_fit", "new_eng", "new_total", f"{grade} AS new_grade",
        f"{band} AS new_band", "gate AS new_gate",
        f"CASE WHEN {' AND '.join(mql)} THEN {'TRUE' if sql.pg else '1'}"
        f" ELSE {'FALSE' if sql.pg else '0'} END AS new_mql",
        f"{breakdown} AS new_breakdown", "old_grade", "old_band", "old_mql",
    ]  # fmt: skip
    if match_rule is not None:
        columns.append("sim_match")
    if rule_columns:
        columns.extend(rule_names)
    return f"{with_}SELECT {', '.join(columns)} FROM ({level2}) y", params
