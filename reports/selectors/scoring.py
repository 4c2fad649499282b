"""Scoring health: does the score predict who buys?

Population: the live leads (not discarded, not merged) that arrived in the
period, after the report's filters. Outcome: the lead reached won (a stage move
to won in its history). Leads still open count as not won, so a young cohort
reads lower than it will end up.

- Conversion per temperature band and per fit grade, and per score decile.
- Per active rule: leads it matches today (its condition evaluated now, not the
  stored breakdown, so a rule saved before its rescore still shows), conversion
  of matched vs unmatched leads and the lift (matched ÷ unmatched) — every rule
  in one statement that reads each lead once (`rule_matches`).
- ROC AUC of the stored total score: the probability that a won lead scores
  higher than a lead that was not won, ties counting half — the rank-sum
  (Mann–Whitney) formula with tied scores given their average rank, computed
  from one grouped query (score → leads, won).

- Holdout figures, apart: the leads with a known outcome (won, lost,
  disqualified) that the learned rule set in use was not fitted on — the
  all-lead AUC counts the leads the points were learned from and flatters
  itself.

Eight queries whatever the number of leads or rules (three load the configuration).
With 120 learned rules on the 9,237 X Education leads the page takes about 2 s
on PostgreSQL where one aggregate with a stage-history lookup per rule took 12 s
(bench/scoring_pages.py).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.db import connections
from django.db.models import (
    Case,
    Count,
    Expression,
    F,
    IntegerField,
    Q,
    QuerySet,
    Value,
    When,
)

from leadflow.core.dbrouter import read_alias
from leads.models import Activity, Lead, LeadStage, ScoreBand, ScoreGrade
from pipeline.models import StageTransition
from reports.formatting import rate
from reports.period import ReportQuery
from scoring import engine
from scoring import fields as scoring_fields
from scoring.models import RuleKind, RuleSetVersion, ScoringRule, VersionStatus
from scoring.selectors import unseen_outcomes

DECILES = 10
BAND_ORDER = [ScoreBand.HOT, ScoreBand.WARM, ScoreBand.COLD, ""]
GRADE_ORDER = [*ScoreGrade.values, ""]


@dataclass
class Segment:
    key: str
    label: str
    leads: int = 0
    won: int = 0

    @property
    def conversion(self) -> float | None:
        return rate(self.won, self.leads)


@dataclass
class RuleHealth:
    rule: ScoringRule
    matched: int
    matched_won: int
    unmatched: int
    unmatched_won: int

    @property
    def matched_conversion(self) -> float | None:
        return rate(self.matched_won, self.matched)

    @property
    def unmatched_conversion(self) -> float | None:
        return rate(self.unmatched_won, self.unmatched)

    @property
    def lift(self) -> float | None:
        if self.matched_conversion is None:
            return None
        return rate(self.matched_conversion, self.unmatched_conversion)

    @property
    def lift_interval(self) -> tuple[float, float] | None:
        """95 % interval of the lift (a risk ratio: Katz's log method); None
        when either side has no conversions to measure it by."""
        a, n1, c, n2 = self.matched_won, self.matched, self.unmatched_won, self.unmatched
        if not (a and c and n1 and n2):
            return None
        ratio = (a / n1) / (c / n2)
        se = math.sqrt(max(1 / a - 1 / n1 + 1 / c - 1 / n2, 0.0))
        return ratio * math.exp(-1.96 * se), ratio * math.exp(1.96 * se)

    @property
    def pushes_wrong_way(self) -> bool:
        """Its points push against what its leads do, and the interval says so
        (a small or noisy rule is not flagged on chance alone)."""
        interval = self.lift_interval
        if interval is None or not self.rule.points:
            return False
        return interval[1] < 1 if self.rule.points > 0 else interval[0] > 1


@dataclass
class HoldoutHealth:
    """The leads with a known outcome that the rules in use were not learned
    from: the only honest test of learned points."""

    version: int  # the number of the rule-set version in use
    leads: int
    won: int
    auc: float | None

    @property
    def conversion(self) -> float | None:
        return rate(self.won, self.leads)


@dataclass
class ScoringHealth:
    leads: int
    won: int
    auc: float | None
    bands: list[Segment]
    grades: list[Segment]
    deciles: list[Segment]
    rules: list[RuleHealth]
    holdout: HoldoutHealth | None = None

    @property
    def conversion(self) -> float | None:
        return rate(self.won, self.leads)


def won_q() -> Q:
    """Leads with a move to won in their history. An uncorrelated IN: the won
    leads are read once and hashed, whatever the planner's statistics (a
    correlated EXISTS planned without them scans the history once per lead)."""
    return Q(pk__in=StageTransition.objects.filter(to_stage=LeadStage.WON).values("lead_id"))


def cohort(query: ReportQuery) -> QuerySet[Lead]:
    return Lead.objects.filter(query.created_q(), discarded_at__isnull=True)


def auc_from_groups(groups: list[tuple[float, int, int]]) -> float | None:
    """ROC AUC from (score, leads, won) rows sorted by score ascending.

    Rank-sum: tied scores share their average rank; AUC = (R₊ − P(P+1)/2) / (P·N)."""
    positives = sum(won for _, _, won in groups)
    negatives = sum(n for _, n, _ in groups) - positives
    if not positives or not negatives:
        return None
    rank_sum, before = 0.0, 0
    for _, n, won in groups:
        rank_sum += won * (before + (n + 1) / 2)
        before += n
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def _deciles(groups: list[tuple[float, int, int]], total: int) -> list[Segment]:
    """Leads cut into ten score slices of about equal size (ties kept together),
    highest scores first."""
    out: list[Segment] = []
    seen = 0
    current: Segment | None = None
    high = low = 0.0
    for score, n, won in reversed(groups):
        if current is None:
            current, high = Segment(key="", label=""), score
        current.leads += n
        current.won += won
        seen += n
        low = score
        if seen >= total * (len(out) + 1) / DECILES:
            current.key = str(len(out) + 1)
            current.label = f"{low:g}" if low == high else f"{low:g}–{high:g}"
            out.append(current)
            current = None
    return out


def rule_matches(
    leads: QuerySet[Lead], rules: list[ScoringRule], now: dt.datetime
) -> dict[int, tuple[int, int]]:
    """(leads matched, of them won) per rule over `leads`, every rule in one
    statement whatever their number: each lead is read once, with each fit
    rule's condition as a 0/1 column and each engagement rule's count of
    matching activities (as the engine counts them) from one pass over the
    activities, then summed. Matched means the condition holds now, not the
    stored breakdown."""
    if not rules:
        return {}
    fit = [r for r in rules if r.kind == RuleKind.FIT]
    counted = [r for r in rules if r.kind == RuleKind.ENGAGEMENT and r.activity_kinds]
    is_won = Case(When(won_q(), then=Value(1)), default=Value(0), output_field=IntegerField())
    flags: dict[str, Expression] = {"is_won": is_won}
    for rule in fit:
        flags[f"m{rule.pk}"] = Case(
            When(scoring_fields.condition(rule.field, rule.operator, rule.value), then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        )
    lead_sql, lead_params = (
        leads.order_by().annotate(**flags).values(*flags, lid=F("pk")).query.sql_with_params()
    )
    connection = connections[read_alias()]  # raw SQL is not routed: pick the read alias
    pg = connection.vendor == "postgresql"
    columns = ["l.is_won", *(f"l.m{r.pk}" for r in fit)]
    with_, params, source = "", list(lead_params), f"({lead_sql}) l"
    if counted:
        activities = (
            Activity.objects.filter(
                lead_id__in=leads.order_by().values("pk"),
                kind__in=sorted({k for r in counted for k in r.activity_kinds}),
            )
            .order_by()
            .values("lead_id")
            .annotate(
                **{
                    f"c{r.pk}": Count("pk", filter=engine.activity_filter(r, now, prefix=""))
                    for r in counted
                }
            )
        )
        agg_sql, agg_params = activities.query.sql_with_params()
        # Aggregated once, whatever plan the join gets.
        with_ = f"WITH a AS {'MATERIALIZED ' if pg else ''}({agg_sql}) "
        params = [*agg_params, *params]
        source += " LEFT JOIN a ON a.lead_id = l.lid"
        columns += [
            f"CASE WHEN COALESCE(a.c{r.pk}, 0) >= {max(int(r.min_count), 1)} THEN 1 ELSE 0 END"
            f" AS m{r.pk}"
            for r in counted
        ]
    # The fence keeps the 0/1 columns computed once per lead: without it
    # PostgreSQL inlines the subquery and SQLite flattens it, evaluating each
    # condition again at every reference in the sums.
    fence = " OFFSET 0" if pg else " LIMIT -1 OFFSET 0"
    measured = [*fit, *counted]
    sums = ", ".join(f"SUM(m{r.pk}), SUM(m{r.pk} * is_won)" for r in measured)
    sql = f"{with_}SELECT {sums or '0'} FROM (SELECT {', '.join(columns)} FROM {source}{fence}) x"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    out = {r.pk: (0, 0) for r in rules}  # an engagement rule with no kinds matches nothing
    for i, rule in enumerate(measured):
        out[rule.pk] = (row[2 * i] or 0, row[2 * i + 1] or 0)
    return out


def holdout_health(leads: QuerySet[Lead]) -> HoldoutHealth | None:
    """Over `leads`: those won, lost or disqualified that the learned version in
    use was not fitted on (None when the rules in use were not learned)."""
    version = (
        RuleSetVersion.objects.filter(status=VersionStatus.APPLIED, source="learned")
        .values_list("pk", "number")
        .first()
    )
    if version is None:
        return None
    unseen = unseen_outcomes(version[0], leads)
    groups = [
        (r["score"], r["n"], r["w"])
        for r in unseen.order_by("score")
        .values("score")
        .annotate(n=Count("pk"), w=Count("pk", filter=Q(stage=LeadStage.WON)))
    ]
    return HoldoutHealth(
        version=version[1],
        leads=sum(n for _, n, _ in groups),
        won=sum(w for _, _, w in groups),
        auc=auc_from_groups(groups),
    )


def scoring_health(*, organization_id: int, query: ReportQuery, now: dt.datetime) -> ScoringHealth:
    leads = cohort(query)
    is_won = won_q()
    segments = (
        leads.order_by()
        .values("band", "grade")
        .annotate(n=Count("pk"), w=Count("pk", filter=is_won))
    )
    bands = {b: Segment(b, ScoreBand(b).label if b else "Not scored") for b in BAND_ORDER}
    grades = {g: Segment(g, g or "Not graded") for g in GRADE_ORDER}
    for row in segments:
        for table, key in ((bands, row["band"]), (grades, row["grade"])):
            seg = table.setdefault(key, Segment(key, key))
            seg.leads += row["n"]
            seg.won += row["w"]
    groups = [
        (r["score"], r["n"], r["w"])
        for r in leads.order_by("score")
        .values("score")
        .annotate(n=Count("pk"), w=Count("pk", filter=is_won))
    ]
    total = sum(n for _, n, _ in groups)
    won = sum(w for _, _, w in groups)

    config = engine.load_config(organization_id=organization_id)
    rules = [r for r in config.rules if r.kind in (RuleKind.FIT, RuleKind.ENGAGEMENT)]
    health: list[RuleHealth] = []
    if rules and total:
        matches = rule_matches(cohort(query), rules, now)
        for r in rules:
            m, mw = matches[r.pk]
            health.append(RuleHealth(r, m, mw, total - m, won - mw))
    return ScoringHealth(
        leads=total,
        won=won,
        auc=auc_from_groups(groups),
        bands=[s for s in bands.values() if s.leads or s.key],
        grades=[s for s in grades.values() if s.leads or s.key],
        deciles=_deciles(groups, total),
        rules=health,
        holdout=holdout_health(cohort(query)),
    )
