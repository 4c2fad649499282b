"""The scoring engine: rules compile to SQL expressions on Lead, so scoring one
lead and scoring a whole tenant run the same statements with a different filter.

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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
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
from django.db.models.functions import Cast, Coalesce, Floor, Greatest, JSONObject, Least, Power
from django.utils import timezone

from leads.models import Lead
from scoring import fields as F_
from scoring.models import GatingRule, RuleKind, ScoringRule, ScoringSettings

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


@dataclass
class RescoreResult:
    scored: int = 0
    crossed_up: list[int] = field(default_factory=list)
    crossed_down: list[int] = field(default_factory=list)


# The pipeline registers callable(organization_id, up_ids, down_ids) here.
mql_crossing_hooks: list[Callable[[int, list[int], list[int]], None]] = []


def load_config(*, organization_id: int) -> Config:
    settings, _ = ScoringSettings.objects.get_or_create(organization_id=organization_id)
    rules = list(ScoringRule.objects.filter(is_active=True).select_related("group").order_by("pk"))
    gates = list(GatingRule.objects.filter(is_active=True).order_by("pk"))
    return Config(settings=settings, rules=rules, gates=gates)


def _fval(x: float) -> Value:
    return Value(float(x), output_field=FloatField())


def activity_filter(rule: ScoringRule, now: datetime) -> Q:
    """The activities (via Lead.activities) that a rule counts."""
    q = Q(activities__kind__in=list(rule.activity_kinds or []))
    if rule.window_days:
        q &= Q(activities__occurred_at__gte=now - timedelta(days=rule.window_days))
    if rule.field:
        q &= property_condition(rule.field, rule.operator, rule.value)
    return q


def property_condition(key: str, operator: str, value) -> Q:
    """A filter on an activity's properties (url, form, utm_*) or its campaign name."""
    if key == "campaign":
        expr = F("activities__campaign__name")
    else:
        if not F_.CUSTOM_KEY.match(key):
            raise F_.RuleError(f"Invalid property name {key!r}.")
        expr = KeyTextTransform(key, "activities__properties")
    if operator in F_.NUMERIC_OPS:
        raise F_.RuleError("Activity properties are compared as text.")
    value = F_.normalize_value("custom.x", operator, value) if operator else None
    if operator in F_.NO_VALUE_OPS or not operator:
        return Q() if not operator else F_._text(expr, operator, None)
    return F_._text(expr, operator, value)


def _weight(rule: ScoringRule, settings: ScoringSettings, now: datetime) -> Expression:
    half_life = (
        rule.half_life_days
        or (rule.group and rule.group.half_life_days)
        or (settings.half_life_days)
    )
    if not half_life:
        return _fval(1.0)
    return Power(_fval(0.5), AgeDays(F("activities__occurred_at"), now) / _fval(half_life))


def _capped(raw: Expression, rule: ScoringRule) -> Expression:
    if rule.max_points is None:
        return raw
    limit = abs(rule.max_points)
    return Least(raw, _fval(limit)) if rule.points >= 0 else Greatest(raw, _fval(-limit))


def rule_annotations(config: Config, now: datetime) -> dict[str, Expression]:
    """One annotation per rule (`r<id>`) plus helpers for engagement counts."""
    out: dict[str, Expression] = {}
    for rule in config.rules:
        name = f"r{rule.pk}"
        if rule.kind == RuleKind.FIT:
            cond = F_.condition(rule.field, rule.operator, rule.value)
            out[name] = Case(When(cond, then=_fval(rule.points)), default=_fval(0))
            continue
        q = activity_filter(rule, now)
        weight = _weight(rule, config.settings, now)
        count = Count("activities", filter=q)
        if rule.first_only:
            agg = Min(weight, filter=q)
        elif rule.per_occurrence:
            agg = Sum(weight, filter=q)
        else:
            agg = Max(weight, filter=q)
        out[f"c{rule.pk}"] = count
        out[f"w{rule.pk}"] = agg
        raw = _fval(rule.points) * Coalesce(F(f"w{rule.pk}"), _fval(0))
        out[name] = Case(
            When(**{f"c{rule.pk}__gte": max(rule.min_count, 1)}, then=_capped(raw, rule)),
            default=_fval(0),
        )
    return out


def _sum(names: Sequence[str]) -> Expression:
    if not names:
        return _fval(0)
    expr: Expression = F(names[0])
    for name in names[1:]:
        expr = expr + F(name)
    return expr


def _part(config: Config, kind: str) -> Expression:
    """Fit or engagement score: group sums capped, plus ungrouped rules."""
    groups: dict[object, list[ScoringRule]] = {}
    for rule in config.rules:
        if rule.kind == kind:
            groups.setdefault(rule.group, []).append(rule)
    parts: list[Expression] = []
    for group, rules in groups.items():
        total = _sum([f"r{r.pk}" for r in rules])
        if group is not None and group.cap is not None:
            total = Least(total, _fval(group.cap))
        parts.append(total)
    if not parts:
        return _fval(0)
    expr = parts[0]
    for part in parts[1:]:
        expr = expr + part
    return expr


def _round(expr: Expression) -> Expression:
    return Cast(Floor(expr + _fval(0.5)), IntegerField())


def score_annotations(config: Config, now: datetime) -> dict[str, Expression]:
    """Everything a rescore writes, as annotations on a Lead queryset."""
    s = config.settings
    ann = rule_annotations(config, now)
    ann["fit_raw"] = _part(config, RuleKind.FIT)
    ann["eng_raw"] = _part(config, RuleKind.ENGAGEMENT)
    total = F("fit_raw") + F("eng_raw")
    if s.total_ceiling:
        total = Least(total, _fval(s.total_ceiling))
    ann["new_fit"] = _round(F("fit_raw"))
    ann["new_eng"] = _round(F("eng_raw"))
    ann["new_total"] = _round(total)
    bands = s.grade_bands or {}
    ann["new_grade"] = Case(
        *[
            When(new_fit__gte=int(bands[g]), then=Value(g))
            for g in GRADES
            if bands.get(g) is not None
        ],
        default=Value("F"),
    )
    temps = s.temperature_bands or {}
    ann["new_band"] = Case(
        When(new_total__gte=int(temps.get("hot", 100)), then=Value("hot")),
        When(new_total__gte=int(temps.get("warm", 40)), then=Value("warm")),
        default=Value("cold"),
    )
    ann["new_gate"] = Case(
        *[
            When(F_.condition(g.field, g.operator, g.value), then=Value(g.reason[:200]))
            for g in config.gates
        ],
        default=Value(""),
    )
    grade_ok = Q()
    if s.min_fit_grade and s.min_fit_grade in GRADES:
        grade_ok = Q(new_grade__in=GRADES[: GRADES.index(s.min_fit_grade) + 1])
    ann["new_mql"] = Case(
        When(
            Q(new_total__gte=s.mql_threshold)
            & grade_ok
            & Q(new_gate="")
            # Discarded junk and leads merged into another never qualify.
            & Q(discarded_at__isnull=True, merged_into__isnull=True),
            then=Value(True),
        ),
        default=Value(False),
    )
    rule_ids = [r.pk for r in config.rules]
    ann["new_breakdown"] = (
        JSONObject(**{f"r{pk}": _round(F(f"r{pk}")) for pk in rule_ids})
        if rule_ids
        else Cast(Value("{}"), output_field=Lead._meta.get_field("score_breakdown"))
    )
    return ann


def scores_queryset(config: Config, leads: QuerySet[Lead], now: datetime) -> QuerySet:
    ann = score_annotations(config, now)
    return leads.annotate(**ann).values(
        "new_fit",
        "new_eng",
        "new_total",
        "new_grade",
        "new_band",
        "new_gate",
        "new_mql",
        "new_breakdown",
        lid=F("pk"),
        old_grade=F("grade"),
        old_band=F("band"),
        old_mql=F("mql_eligible"),
    )


TEMP = "_lead_scores"


def rescore(
    *,
    organization_id: int,
    lead_ids: Iterable[int] | None = None,
    id_range: tuple[int, int] | None = None,
    now: datetime | None = None,
    config: Config | None = None,
) -> RescoreResult:
    """Recompute and store the scores of some (or all) leads of the active organization.

    Must run inside the organization's scope; one transaction."""
    now = now or timezone.now()
    config = config or load_config(organization_id=organization_id)
    leads = Lead.objects.all()
    if lead_ids is not None:
        leads = leads.filter(pk__in=list(lead_ids))
    if id_range is not None:
        leads = leads.filter(pk__gte=id_range[0], pk__lt=id_range[1])
    sql, params = scores_queryset(config, leads, now).query.sql_with_params()
    stamp = connection.ops.adapt_datetimefield_value(now)
    result = RescoreResult()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TEMP}")
        cursor.execute(f"CREATE TEMPORARY TABLE {TEMP} AS {sql}", params)
        changed = "s.new_grade <> s.old_grade OR s.new_band <> s.old_band OR s.new_mql <> s.old_mql"
        cursor.execute(
            "INSERT INTO scoring_scorehistory (organization_id, lead_id, at, score, fit_score,"
            " engagement_score, grade, band, mql_eligible, previous_grade, previous_band,"
            " previous_mql_eligible)"
            " SELECT %s, s.lid, %s, s.new_total, s.new_fit, s.new_eng, s.new_grade, s.new_band,"
            f" s.new_mql, s.old_grade, s.old_band, s.old_mql FROM {TEMP} s WHERE {changed}",
            [organization_id, stamp],
        )
        cursor.execute(
            "UPDATE leads_lead SET fit_score = s.new_fit, engagement_score = s.new_eng,"
            " score = s.new_total, grade = s.new_grade, band = s.new_band,"
            " mql_eligible = s.new_mql, gating_reason = s.new_gate,"
            " score_breakdown = s.new_breakdown, scored_at = %s,"
            " mql_changed_at = CASE WHEN s.new_mql <> s.old_mql THEN %s"
            " ELSE leads_lead.mql_changed_at END"
            f" FROM {TEMP} s WHERE leads_lead.id = s.lid",
            [stamp, stamp],
        )
        result.scored = cursor.rowcount
        cursor.execute(f"SELECT s.lid, s.new_mql FROM {TEMP} s WHERE s.new_mql <> s.old_mql")
        for lead_id, mql in cursor.fetchall():
            (result.crossed_up if mql else result.crossed_down).append(lead_id)
        cursor.execute(f"DROP TABLE {TEMP}")
        if result.crossed_up or result.crossed_down:
            for hook in mql_crossing_hooks:
                hook(organization_id, result.crossed_up, result.crossed_down)
    return result
