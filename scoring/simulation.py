"""What a rule would do before it is saved: how many leads it matches, and how
the MQL count and the score distribution would change.

Both sides are computed by the engine itself (scoring.engine.scores_sql)
at the same instant: "now" with the active rules as they are, "after" with the
candidate added (or replacing the rule it edits) — the "after" side only for
the leads the rule could touch, since every other lead keeps its score. The two
score sets are joined per lead in ONE statement, so the page also says how many
leads would become or stop being MQLs. Whatever the number of leads, the
simulation is 4 queries (3 to load the configuration, 1 to compare). Nothing
is written.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime

from django.db import OperationalError, connection, transaction
from django.db.models import Case, F, Q, When
from django.utils import timezone

from leadflow.core.errors import LeadflowError
from leads.models import Lead
from scoring import engine
from scoring import fields as F_
from scoring.models import RuleKind, ScoringRule
from scoring.selectors import Bucket, Distribution, live_leads, score_buckets

# A live simulation scores the tenant twice; on a very large tenant it must not
# hold a connection for minutes while the admin types. PostgreSQL only.
TIMEOUT_MS = 30_000
QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement timeout


class SimulationTooSlow(LeadflowError):
    """The tenant is too large to simulate within TIMEOUT_MS."""


# The candidate of a new rule needs an id for its annotations (r0, c0, w0);
# database ids start at 1, so 0 never collides with a saved rule.
CANDIDATE_PK = 0


@dataclass
class RuleSimulation:
    before: Distribution
    after: Distribution
    matches: int  # live leads meeting the rule's condition (points aside)
    changed: int  # leads whose total score would change
    gained: int  # leads that would become MQL-eligible
    lost: int  # leads that would stop being MQL-eligible
    threshold: int  # the MQL threshold both sides were judged by

    @property
    def mql_delta(self) -> int:
        return self.after.mql - self.before.mql

    @property
    def match_share(self) -> float:
        return round(100 * self.matches / self.before.total, 1) if self.before.total else 0.0

    @property
    def rows(self) -> list[dict]:
        return [
            {
                "label": b["label"],
                "before": b["count"],
                "after": a["count"],
                "delta": a["count"] - b["count"],
            }
            for b, a in zip(self.before.rows, self.after.rows, strict=True)
        ]

    def chart_data(self) -> dict:
        data = self.before.chart_data(threshold=self.threshold, label="Now")
        data["series"].append({"label": "With this rule", "data": self.after.counts})
        return data


def _may_score(rules: list[ScoringRule], now: datetime) -> Q:
    """Leads these rules could give points to (a superset): every other lead
    scores the same with or without them, so only these need scoring twice."""
    q = Q(pk__in=[])
    for rule in rules:
        if rule.kind == RuleKind.FIT:
            q |= F_.condition(rule.field, rule.operator, rule.value)
        else:
            # A semi-join on the rule's activities (kinds, window, property filter).
            matching = Lead.objects.filter(engine.activity_filter(rule, now)).values("pk")
            q |= Q(pk__in=matching)
    return q


def _bucket_sql(bucket: Bucket, column: str) -> str:
    # Bucket edges are ints computed here, never user input.
    parts = []
    if bucket.low is not None:
        parts.append(f"{column} >= {int(bucket.low)}")
    if bucket.high is not None:
        parts.append(f"{column} < {int(bucket.high)}")
    return " AND ".join(parts) or "1 = 1"


def _materialized() -> str:
    """Each side of a simulation is computed once: on estimates of one row (a
    new tenant, statistics not gathered yet) PostgreSQL would otherwise nest the
    join and score every lead again for each lead, quadratic in the leads."""
    return "MATERIALIZED " if connection.vendor == "postgresql" else ""


def _count(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def _fetch(sql: str, params: list) -> tuple:
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {int(TIMEOUT_MS)}")
            cursor.execute(sql, params)
            return cursor.fetchone()
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != QUERY_CANCELED:
            raise
        raise SimulationTooSlow(
            f"Your leads are too many to simulate within {TIMEOUT_MS // 1000} seconds. "
            "Save the rule and follow the rescore instead; it can be switched off at any time."
        ) from exc


def simulate_rule(
    *, organization_id: int, candidate: ScoringRule, now: datetime | None = None
) -> RuleSimulation:
    """Score the organization's live leads with and without `candidate` (unsaved).

    An edited rule (candidate.pk set) replaces its saved version; the candidate
    is scored as if active. Must run inside the organization's scope."""
    now = now or timezone.now()
    config = engine.load_config(organization_id=organization_id)
    rule = copy.copy(candidate)
    if rule.pk is None:
        rule.pk = CANDIDATE_PK
    others = [r for r in config.rules if r.pk != rule.pk]
    after = engine.Config(settings=config.settings, rules=[*others, rule], gates=config.gates)

    leads = live_leads()
    saved = [r for r in config.rules if r.pk == rule.pk]
    before_sql, before_params = engine.scores_sql(config, leads, now)
    after_sql, after_params = engine.scores_sql(
        after, leads.filter(_may_score([rule, *saved], now)), now, match_rule=rule
    )

    # Leads outside the "after" side score the same either way (b is NULL).
    new_total, new_mql = "COALESCE(b.new_total, a.new_total)", "COALESCE(b.new_mql, a.new_mql)"
    buckets = score_buckets(threshold=config.settings.mql_threshold)
    columns = [
        "COUNT(*)",
        _count("a.new_mql"),
        _count(new_mql),
        _count(f"{new_mql} AND NOT a.new_mql"),
        _count(f"a.new_mql AND NOT {new_mql}"),
        _count(f"a.new_total <> {new_total}"),
        "SUM(b.sim_match)",
    ]
    for total_sql, mql_sql in (("a.new_total", "a.new_mql"), (new_total, new_mql)):
        for bucket in buckets:
            in_bucket = _bucket_sql(bucket, total_sql)
            columns.append(_count(in_bucket))
            columns.append(_count(f"{in_bucket} AND {mql_sql}"))
    once = _materialized()
    sql = (
        f"WITH a AS {once}({before_sql}), b AS {once}({after_sql})"
        f" SELECT {', '.join(columns)} FROM a LEFT JOIN b ON a.lid = b.lid"
    )
    row = [int(v or 0) for v in _fetch(sql, [*before_params, *after_params])]

    total, mql_before, mql_after, gained, lost, changed, matches = row[:7]
    per_side = row[7:]
    n = len(buckets)

    def side(offset: int, mql: int) -> Distribution:
        values = per_side[offset : offset + 2 * n]
        return Distribution(
            buckets=buckets, counts=values[0::2], mqls=values[1::2], total=total, mql=mql
        )

    return RuleSimulation(
        before=side(0, mql_before),
        after=side(2 * n, mql_after),
        matches=matches,
        changed=changed,
        gained=gained,
        lost=lost,
        threshold=config.settings.mql_threshold,
    )


# --- a whole rule-set version -------------------------------------------------------


@dataclass
class RuleOutcome:
    name: str
    kind: str
    points: int
    matched: int  # leads with an outcome it gives points to
    won: int

    @property
    def rate(self) -> float | None:
        return round(100 * self.won / self.matched, 1) if self.matched else None


@dataclass
class VersionSimulation:
    leads: int  # leads with a known outcome the version did not learn from
    won: int
    current_auc: float | None
    draft_auc: float | None
    rules: list[RuleOutcome]
    skipped: list[str]  # rules left out: switched off, on a sales field, or not compiling

    @property
    def base_rate(self) -> float | None:
        return round(100 * self.won / self.leads, 1) if self.leads else None

    @property
    def auc_delta(self) -> float | None:
        if self.current_auc is None or self.draft_auc is None:
            return None
        return self.draft_auc - self.current_auc


def version_config(version, settings, refused: set[str]) -> tuple[engine.Config, list[str]]:
    """The version's rules as unsaved engine rules (ids 1..n, groups by name),
    with its settings over `settings`; the rules left out, by name."""
    from scoring.models import ScoreGroup
    from scoring.selectors import RULE_FIELDS
    from scoring.versions import SETTINGS_FIELDS

    settings = copy.copy(settings)
    for name in SETTINGS_FIELDS:
        if name in (version.settings or {}):
            setattr(settings, name, version.settings[name])
    groups: dict[str, ScoreGroup] = {}
    rules, skipped = [], []
    for number, data in enumerate(version.rules, start=1):
        spec = {k: data[k] for k in RULE_FIELDS if k in data}
        rule = ScoringRule(pk=number, organization_id=version.organization_id, **spec)
        if data.get("group"):
            name = data["group"]["name"]
            if name not in groups:
                cap = data["group"].get("cap")
                groups[name] = ScoreGroup(pk=len(groups) + 1, name=name, cap=cap)
            rule.group = groups[name]
        off = not data.get("is_active", True) or (
            rule.kind == RuleKind.FIT and rule.field in refused
        )
        if off or not engine.compiles(rule):
            skipped.append(rule.name)
        else:
            rules.append(rule)
    return engine.Config(settings=settings, rules=rules, gates=[]), skipped


def _rank(column: str) -> str:
    # Mid-rank of a score among all scores (ties share the mean rank).
    return f"(RANK() OVER (ORDER BY {column}) + (COUNT(*) OVER (PARTITION BY {column}) - 1) / 2.0)"


def _auc(rank_sum: float | None, won: int, lost: int) -> float | None:
    """Mann-Whitney: P(a won lead outscores a lost one), ties counting half."""
    if not won or not lost or rank_sum is None:
        return None
    return (float(rank_sum) - won * (won + 1) / 2) / (won * lost)


def simulate_version(*, version, now: datetime | None = None) -> VersionSimulation:
    """Score the leads with a known outcome that `version` was not learned from
    with the rules in use and with the version, in ONE statement: the AUC of
    each side (rank sums by window functions) and, per rule of the version,
    how many of those leads it gives points to and how many of them were won.
    Constant query count, whatever the number of leads or rules. Must run inside
    the organization's scope; nothing is written."""
    from leads.models import LeadStage
    from scoring.selectors import post_qualification_fields, unseen_outcomes

    now = now or timezone.now()
    current = engine.load_config(organization_id=version.organization_id)
    draft, skipped = version_config(version, current.settings, post_qualification_fields())
    leads = unseen_outcomes(version.pk)
    current_sql, current_params = engine.scores_sql(current, leads, now)
    draft_sql, draft_params = engine.scores_sql(draft, leads, now, rule_columns=True)
    outcome_sql, outcome_params = (
        leads.annotate(won=Case(When(stage=LeadStage.WON, then=1), default=0))
        .values("won", oid=F("pk"))
        .query.sql_with_params()
    )
    rule_names = [f"d.r{r.pk}" for r in draft.rules]
    matches = "".join(
        f", CASE WHEN {n} <> 0 THEN 1 ELSE 0 END AS m{i}" for i, n in enumerate(rule_names)
    )
    once = _materialized()
    ranked = (
        f"WITH o AS {once}({outcome_sql}), c AS {once}({current_sql}),"
        f" d AS {once}({draft_sql})"
        f" SELECT o.won, {_rank('c.new_total')} AS c_rank, {_rank('d.new_total')} AS d_rank"
        f"{matches} FROM o JOIN c ON c.lid = o.oid JOIN d ON d.lid = o.oid"
    )
    columns = [
        "COUNT(*)", "SUM(won)",
        "SUM(CASE WHEN won = 1 THEN c_rank ELSE 0 END)",
        "SUM(CASE WHEN won = 1 THEN d_rank ELSE 0 END)",
    ]  # fmt: skip
    for i in range(len(rule_names)):
        columns += [f"SUM(m{i})", f"SUM(CASE WHEN won = 1 THEN m{i} ELSE 0 END)"]
    row = _fetch(
        f"SELECT {', '.join(columns)} FROM ({ranked}) z",
        [*outcome_params, *current_params, *draft_params],
    )
    total, won = int(row[0] or 0), int(row[1] or 0)
    per_rule = [int(v or 0) for v in row[4:]]
    return VersionSimulation(
        leads=total,
        won=won,
        current_auc=_auc(row[2], won, total - won),
        draft_auc=_auc(row[3], won, total - won),
        rules=[
            RuleOutcome(
                name=rule.name,
                kind=rule.kind,
                points=rule.points,
                matched=per_rule[2 * i],
                won=per_rule[2 * i + 1],
            )
            for i, rule in enumerate(draft.rules)
        ],
        skipped=skipped,
    )
