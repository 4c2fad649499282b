"""The lead funnel by cohort, from the stage history.

Definitions (the tests pin them):
- Cohort: the leads that *arrived* (created_at) in the period; a lead's later
  progress credits the period it arrived in, whenever it happens.
- A lead has reached a stage when its history holds a transition into that stage
  or into any later one: skipped stages count as passed (a lead created straight
  into SQL has passed MQL and SAL). `lost` implies the opportunity stage.
- Repeated stages count once (a lead that was MQL twice is one MQL); recycling
  keeps the credit a lead already earned.
- Won = reached `won`; lost = reached `lost` and never won.
  Win rate = won / (won + lost) — open deals are not decided yet.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Trunc

from leads.models import Lead, LeadStage, Quality
from pipeline.models import StageTransition
from reports.formatting import rate
from reports.period import ReportQuery

S = LeadStage
# The funnel's steps, in order, with the rank a transition into them proves.
STEPS: list[tuple[str, str]] = [
    ("leads", "Leads"),
    ("mql", "MQL"),
    ("sal", "SAL"),
    ("sql", "SQL"),
    ("opportunity", "Opportunity"),
    ("won", "Won"),
]
RANK = {S.MQL: 1, S.SAL: 2, S.SQL: 3, S.OPPORTUNITY: 4, S.LOST: 4, S.WON: 5}


@dataclass
class FunnelCounts:
    leads: int = 0
    junk: int = 0
    reached: list[int] = field(default_factory=lambda: [0] * len(STEPS))
    won: int = 0
    lost: int = 0

    def add(self, *, n: int, rank: int, won: bool, lost: bool, junk: bool) -> None:
        self.leads += n
        self.junk += n if junk else 0
        for i in range(len(STEPS)):
            if rank >= i:
                self.reached[i] += n
        self.won += n if won else 0
        self.lost += n if (lost and not won) else 0

    @classmethod
    def total(cls, parts) -> FunnelCounts:
        """The sum of several groups' counts (e.g. every source → the whole cohort)."""
        out = cls()
        for c in parts:
            out.leads += c.leads
            out.junk += c.junk
            out.won += c.won
            out.lost += c.lost
            out.reached = [a + b for a, b in zip(out.reached, c.reached, strict=True)]
        return out

    def count(self, step: str) -> int:
        return self.reached[[k for k, _ in STEPS].index(step)]

    @property
    def mql(self) -> int:
        return self.count("mql")

    @property
    def sql(self) -> int:
        return self.count("sql")

    @property
    def mql_rate(self) -> float | None:
        return rate(self.mql, self.leads)

    @property
    def sql_rate(self) -> float | None:
        return rate(self.sql, self.leads)

    @property
    def junk_rate(self) -> float | None:
        return rate(self.junk, self.leads)

    @property
    def win_rate(self) -> float | None:
        return rate(self.won, self.won + self.lost)

    @property
    def lead_to_won(self) -> float | None:
        return rate(self.won, self.leads)

    def steps(self) -> list[dict]:
        """Each step: count, conversion from the previous step and from the top."""
        out = []
        for i, (key, label) in enumerate(STEPS):
            n = self.reached[i]
            out.append(
                {
                    "key": key,
                    "label": label,
                    "count": n,
                    "step_rate": rate(n, self.reached[i - 1]) if i else None,
                    "overall_rate": rate(n, self.leads) if i else None,
                }
            )
        return out


def _rank_case() -> Case:
    return Case(
        *(When(to_stage=stage, then=Value(rank)) for stage, rank in RANK.items()),
        default=Value(0),
        output_field=IntegerField(),
    )


def cohort_funnel(query: ReportQuery, *, group: str | None = None) -> dict:
    """FunnelCounts of the period's cohort, per group key (one SQL query).

    group: None (one total, key None), "bucket" (arrival day/week/month, a date),
    "first_source", or "first_campaign_id".
    """
    history = StageTransition.objects.filter(lead_id=OuterRef("pk"))
    top_rank = history.order_by().values("lead_id").annotate(r=Max(_rank_case())).values("r")
    leads = (
        Lead.objects.filter(query.created_q())
        .annotate(
            r=Coalesce(Subquery(top_rank, output_field=IntegerField()), Value(0)),
            w=Exists(history.filter(to_stage=S.WON)),
            l=Exists(history.filter(to_stage=S.LOST)),
        )
        .order_by()
    )
    keys = ["r", "w", "l", "quality"]
    if group == "bucket":
        leads = leads.annotate(g=Trunc("created_at", query.grain, tzinfo=query.tz))
        keys.append("g")
    elif group:
        leads = leads.annotate(g=F(group))
        keys.append("g")
    out: dict = defaultdict(FunnelCounts)
    for row in leads.values(*keys).annotate(n=Count("pk")):
        key = row.get("g")
        if group == "bucket":
            assert key is not None  # truncated created_at, a NOT NULL column
            key = key.astimezone(query.tz).date()
        out[key].add(
            n=row["n"],
            rank=row["r"],
            won=bool(row["w"]),
            lost=bool(row["l"]),
            junk=row["quality"] == Quality.JUNK,
        )
    return out


def funnel_total(query: ReportQuery) -> FunnelCounts:
    return cohort_funnel(query).get(None) or FunnelCounts()
