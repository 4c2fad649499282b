"""Velocity rollups, the writes: time in stage, speed to lead and SLA counts per
day (durations as histograms, see reports.sketch; counts of open stays, untouched
leads, speed bands and SLA met / breached exactly), so the funnel & velocity page
merges a period's days instead of sorting its rows.

Refreshed by `reports.services.rollups.rollup_refresh` in the same transaction as the
cohort rollups: the days of every stay and assignment of a lead changed since the
last refresh (a move closes the lead's previous stay; a touch, a merge, a move
into MQL all bump `Lead.updated_at`), plus the days of assignments breached since.
"""

from __future__ import annotations

import datetime as dt

from django.db import connections
from django.db.models import Count, Exists, F, OuterRef, Q, Window
from django.db.models.functions import Lead as NextValue
from django.db.models.functions import TruncDate

from leads.models import Lead
from pipeline.models import Assignment, StageTransition
from reports.models import SlaDayRollup, VelocityRollup
from reports.selectors.distribution import compiled, seconds_between
from reports.selectors.velocity import BANDS, band_condition, speed_rows
from reports.selectors.velocity_rollups import SPEED_MEASURES
from reports.sketch import bucket_sql


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
    days: set[dt.date] = set()
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
