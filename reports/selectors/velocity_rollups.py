"""Velocity rollups, the reads: org-wide funnel & velocity figures merged from the
day rollups (reports.services.velocity_rollups writes them). Rep, team, source or
campaign views, and a stale or absent rollup, use the live selectors
(reports.selectors.velocity) instead.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db import connections
from django.db.models import OuterRef, Subquery, Sum
from django.utils import timezone

from accounts.models import Membership
from pipeline.models import Team
from reports.models import RollupState, SlaDayRollup, VelocityRollup
from reports.period import ReportQuery
from reports.selectors.distribution import compiled
from reports.selectors.velocity import BANDS, STAY_STAGES
from reports.sketch import percentile_of

# Older than this, the refresh job has stopped: the page computes from the facts.
STALE_AFTER = dt.timedelta(hours=1)
SPEED_MEASURES = {"system": (50, 95), "rep": (50, 95), "total": (50, 95)}


def velocity_usable(query: ReportQuery, state: RollupState | None) -> bool:
    """Whether the velocity rollups answer this query (state: `rollup_state(query)`,
    already None for rep and team views and another timezone)."""
    return (
        state is not None
        and not (query.source or query.campaign_id)
        and state.velocity_at is not None
        and state.velocity_at >= timezone.now() - STALE_AFTER
    )


def velocity_figures(query: ReportQuery) -> tuple[dict, dict]:
    """(time-in-stage figures by stage, speed figures) in the live selectors' shape.

    One statement merges the period's day histograms (a sum per measure and
    bucket), ranks the buckets with running sums and returns only the buckets
    around each percentile's ranks, with the plain counts: its size depends on
    the number of buckets, never on the leads."""
    merged = (
        VelocityRollup.objects.filter(day__gte=query.start, day__lte=query.end)
        .order_by()
        .values("measure", "bucket")
        .annotate(n=Sum("n"))
    )
    inner, params = compiled(merged)
    high = "CASE WHEN c.measure LIKE 'stay:%%' THEN 90 ELSE 95 END"
    near = " OR ".join(
        f"(c.upto > CAST((c.total - 1) * {p} / 100.0 AS INTEGER) - 1"
        f" AND c.upto - c.n <= CAST((c.total - 1) * {p} / 100.0 AS INTEGER) + 2)"
        for p in ("50", f"({high})")
    )
    sql = (
        f"WITH h AS ({inner}) SELECT c.measure, c.bucket, c.upto - c.n, c.n, c.total FROM"
        " (SELECT h.measure, h.bucket, h.n,"
        " SUM(h.n) OVER (PARTITION BY h.measure ORDER BY h.bucket) AS upto,"
        " SUM(h.n) OVER (PARTITION BY h.measure) AS total"
        f" FROM h WHERE h.bucket IS NOT NULL) c WHERE {near}"
        " UNION ALL SELECT h.measure, NULL, 0, h.n, h.n FROM h WHERE h.bucket IS NULL"
    )
    ranked: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    totals: dict[str, int] = {}
    with connections[merged.db].cursor() as cursor:
        cursor.execute(sql, params)
        for measure, bucket, before, n, total in cursor.fetchall():
            totals[measure] = int(total)
            if bucket is not None:
                ranked[measure].append((bucket, int(before), int(n)))
    for rows in ranked.values():
        rows.sort()

    def figures(name: str, key: str, percents) -> dict:
        total = totals.get(key, 0)
        out: dict[str, float | None] = {f"{name}_n": total}
        out.update({f"{name}_p{p}": percentile_of(ranked[key], total, p) for p in percents})
        return out

    stays = {
        s.value: {
            **figures("stay", f"stay:{s.value}", (50, 90)),
            "open": totals.get(f"open:{s.value}", 0),
        }
        for s in STAY_STAGES
    }
    speed: dict = {}
    for name, percents in SPEED_MEASURES.items():
        speed.update(figures(name, name, percents))
    speed["untouched"] = totals.get("untouched", 0)
    speed.update({f"band{i}": totals.get(f"band{i}", 0) for i in range(len(BANDS))})
    return stays, speed


def sla_counts(query: ReportQuery) -> list[dict]:
    """Assigned / met / breached per (rep, team) over the period's days, with the
    names (one query), in the shape of the live SLA counts."""
    name = Membership.objects.filter(pk=OuterRef("membership_id")).values
    rows = (
        SlaDayRollup.objects.filter(day__gte=query.start, day__lte=query.end)
        .order_by()
        .values("membership_id", "team_id")
        .annotate(
            assigned=Sum("assigned"),
            met=Sum("met"),
            breached=Sum("breached"),
            rep_name=Subquery(name("user__full_name")[:1]),
            rep_email=Subquery(name("user__email")[:1]),
            team_name=Subquery(Team.objects.filter(pk=OuterRef("team_id")).values("name")[:1]),
        )
    )
    renamed = {
        "rep_name": "membership__user__full_name",
        "rep_email": "membership__user__email",
        "team_name": "team__name",
    }
    return [{renamed.get(key, key): value for key, value in row.items()} for row in rows]
