"""Velocity rollups: time in stage, speed to lead and SLA counts per day, so the
funnel & velocity page merges a period's days instead of sorting its rows.

Durations are kept as histograms in log-spaced buckets (DDSketch): a duration d > 0
falls in bucket ceil(ln d / ln γ), γ = (1 + α) / (1 − α), whose representative
2γ^i / (γ + 1) is within α = 1% of every value in it; zero has a bucket of its own.
A percentile of the merged buckets interpolates between the representatives of
the two ranks around (n − 1) · p, as percentile_cont does between the values, so
it is within 1% of the exact figure. Counts (stays still open, untouched leads,
speed bands, SLA met / breached) are kept exactly.

Refreshed by `reports.services.rollups.rollup_refresh` in the same transaction as the
cohort rollups: the days of every stay and assignment of a lead changed since the
last refresh (a move closes the lead's previous stay; a touch, a merge, a move
into MQL all bump `Lead.updated_at`), plus the days of assignments breached since.
Org-wide queries read them (`velocity_usable`); rep, team, source or campaign
views, a stale or absent rollup use the live selectors.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict

from django.db import connections
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Sum, Window
from django.db.models.functions import Lead as NextValue
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Membership
from leads.models import Lead
from pipeline.models import Assignment, StageTransition, Team
from reports.models import RollupState, SlaDayRollup, VelocityRollup
from reports.period import ReportQuery
from reports.selectors.distribution import compiled, seconds_between
from reports.selectors.velocity import BANDS, STAY_STAGES, band_condition, speed_rows

RELATIVE_ERROR = 0.01
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
LN_GAMMA = math.log(GAMMA)
ZERO_BUCKET = -1_000_000  # below every real bucket (1 µs is bucket −691)
# Older than this, the refresh job has stopped: the page computes from the facts.
STALE_AFTER = dt.timedelta(hours=1)
SPEED_MEASURES = {"system": (50, 95), "rep": (50, 95), "total": (50, 95)}


def bucket_sql(seconds: str) -> str:
    """SQL: the bucket of a duration in seconds (NULL stays NULL)."""
    return (
        f"CASE WHEN ({seconds}) <= 0 THEN {ZERO_BUCKET}"
        f" ELSE CAST(CEILING(LN({seconds}) / {LN_GAMMA!r}) AS INTEGER) END"
    )


def bucket_value(bucket: int) -> float:
    return 0.0 if bucket == ZERO_BUCKET else 2 * GAMMA**bucket / (GAMMA + 1)


def percentile_of(ranked: list[tuple[int, int, int]], total: int, p: int) -> float | None:
    """Interpolated p-th percentile of `total` values from (bucket, values before
    it, values in it) rows, ascending; rows holding neither rank around
    (total − 1) · p may be left out."""
    if not total:
        return None
    pos = (total - 1) * p / 100
    low = math.floor(pos)
    frac = pos - low

    def at(rank: int) -> float:
        return next(bucket_value(b) for b, before, n in ranked if before <= rank < before + n)

    value = at(low)
    return value + (at(low + 1) - value) * frac if frac else value


# -- refresh ---------------------------------------------------------------------------


def _not_merged():
    return ~Exists(Lead.objects.filter(pk=OuterRef("lead_id"), merged_into__isnull=False))


def _day_start(day: dt.date, tz) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=tz)


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _day_filter(days: list[dt.date] | None, vendor: str) -> tuple[str, tuple]:
    if days is None:
        return "", ()
    values = tuple(d if vendor == "postgresql" else d.isoformat() for d in days)
    return f" WHERE x.d IN ({', '.join(['%s'] * len(days))})", values


def stale_days(tz, changed, since: dt.datetime) -> list[dt.date]:
    """Days (org timezone) whose velocity figures the changed leads may have moved."""
    leads = changed.values("pk")
    stays = StageTransition.objects.filter(lead__in=leads).annotate(
        d=TruncDate("occurred_at", tzinfo=tz)
    )
    # Two statements, not one OR: "lead IN (…) OR breached" cannot be a semi-join,
    # and PostgreSQL re-ran the changed leads' subquery for every assignment.
    assigned = Assignment.objects.annotate(d=TruncDate("assigned_at", tzinfo=tz))
    days = set()
    for qs in (stays, assigned.filter(lead__in=leads), assigned.filter(breached_at__gte=since)):
        days.update(qs.order_by().values_list("d", flat=True).distinct())
    return sorted(days)


def _stay_rows(organization_id: int, tz, days, cursor, vendor) -> list[VelocityRollup]:
    moves = StageTransition.objects.filter(_not_merged())
    if days is not None:
        # A stay is closed by a later move only: earlier moves are not needed.
        moves = moves.filter(occurred_at__gte=_day_start(days[0], tz))
    rows = (
        moves.annotate(
            left_at=Window(
                NextValue("occurred_at"),
                partition_by=[F("lead_id")],
                order_by=[F("occurred_at").asc(), F("pk").asc()],
            ),
            d=TruncDate("occurred_at", tzinfo=tz),
        )
        .order_by()
        .values("d", "to_stage", "occurred_at", "left_at")
    )
    sql, params = compiled(rows)
    where, day_params = _day_filter(days, vendor)
    stay = seconds_between("x.left_at", "x.occurred_at", vendor=vendor)
    cursor.execute(
        f"SELECT x.d, x.to_stage, CASE WHEN x.left_at IS NOT NULL THEN {bucket_sql(stay)} END,"
        f" COUNT(*) FROM ({sql}) x{where} GROUP BY 1, 2, 3",
        (*params, *day_params),
    )
    return [
        VelocityRollup(
            organization_id=organization_id,
            day=_as_date(d),
            measure=f"{'open' if bucket is None else 'stay'}:{stage}",
            bucket=bucket,
            n=n,
        )
        for d, stage, bucket, n in cursor.fetchall()
    ]


def _speed_rows(organization_id: int, tz, days, cursor, vendor) -> list[VelocityRollup]:
    assignments = Assignment.objects.filter(_not_merged())
    if days is not None:
        assignments = assignments.filter(assigned_at__gte=_day_start(days[0], tz))
    sql, params = speed_rows(
        assignments.annotate(d=TruncDate("assigned_at", tzinfo=tz)), keep=("d",)
    )
    where, day_params = _day_filter(days, vendor)
    parts = [
        f"SELECT r.d, '{name}', {bucket_sql(f'r.{name}_s')}, COUNT(*) FROM r"
        f" WHERE r.{name}_s IS NOT NULL GROUP BY 1, 2, 3"
        for name in SPEED_MEASURES
    ]
    counts = {"untouched": "r.first_touched_at IS NULL"}
    counts.update({f"band{i}": band_condition(i) for i in range(len(BANDS))})
    parts += [
        f"SELECT r.d, '{name}', NULL, SUM(CASE WHEN {cond} THEN 1 ELSE 0 END) FROM r GROUP BY 1"
        for name, cond in counts.items()
    ]
    cursor.execute(
        f"WITH r AS (SELECT * FROM ({sql}) x{where}) " + " UNION ALL ".join(parts),
        (*params, *day_params),
    )
    return [
        VelocityRollup(
            organization_id=organization_id, day=_as_date(d), measure=m, bucket=bucket, n=n
        )
        for d, m, bucket, n in cursor.fetchall()
        if n
    ]


def _sla_rows(organization_id: int, tz, days) -> list[SlaDayRollup]:
    assignments = Assignment.objects.filter(_not_merged()).annotate(
        d=TruncDate("assigned_at", tzinfo=tz)
    )
    if days is not None:
        assignments = assignments.filter(assigned_at__gte=_day_start(days[0], tz), d__in=days)
    rows = (
        assignments.order_by()
        .values("d", "membership_id", "team_id")
        .annotate(
            assigned=Count("pk"),
            breached=Count("pk", filter=Q(breached_at__isnull=False)),
            met=Count("pk", filter=Q(breached_at__isnull=True, first_touched_at__isnull=False)),
        )
    )
    return [SlaDayRollup(organization_id=organization_id, day=r.pop("d"), **r) for r in rows]


def velocity_rollup_refresh(*, organization_id: int, tz, days: list[dt.date] | None) -> int:
    """Recompute the velocity rollups of `days` (None: all of them); in the caller's
    transaction. Returns the rows written."""
    velocity, sla = VelocityRollup.objects.all(), SlaDayRollup.objects.all()
    if days is not None:
        if not days:
            return 0
        velocity, sla = velocity.filter(day__in=days), sla.filter(day__in=days)
    velocity.delete()
    sla.delete()
    connection = connections[VelocityRollup.objects.db]
    with connection.cursor() as cursor:
        rows = _stay_rows(organization_id, tz, days, cursor, connection.vendor)
        rows += _speed_rows(organization_id, tz, days, cursor, connection.vendor)
    sla_rows = _sla_rows(organization_id, tz, days)
    VelocityRollup.objects.bulk_create(rows, batch_size=2000)
    SlaDayRollup.objects.bulk_create(sla_rows, batch_size=2000)
    return len(rows) + len(sla_rows)


# -- the fast path ---------------------------------------------------------------------


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

    def measure(name: str, key: str, percents) -> dict:
        total = totals.get(key, 0)
        out = {f"{name}_n": total}
        out.update({f"{name}_p{p}": percentile_of(ranked[key], total, p) for p in percents})
        return out

    stays = {
        s.value: {
            **measure("stay", f"stay:{s.value}", (50, 90)),
            "open": totals.get(f"open:{s.value}", 0),
        }
        for s in STAY_STAGES
    }
    speed: dict = {}
    for name, percents in SPEED_MEASURES.items():
        speed.update(measure(name, name, percents))
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
