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
from django.db.models import Q
from django.utils import timezone

from leadflow.errors import LeadflowError
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
    sql = (
        f"SELECT {', '.join(columns)} FROM ({before_sql}) a"
        f" LEFT JOIN ({after_sql}) b ON a.lid = b.lid"
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
