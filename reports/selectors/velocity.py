"""Velocity: how long leads stay in each stage, speed to lead and SLA compliance.

Time in stage: each transition into a stage that happened in the period opens a
stay; the lead's next transition closes it. Median and P90 are over closed stays
(stays still open are counted apart: "still there").

Speed to lead, per assignment made in the period (reassignments after an SLA
breach are left out: they are the same lead's second try):
- system delay = handoff → assigned, the handoff being the lead's latest move into
  MQL before the assignment (its creation when it never passed through MQL);
- rep delay = assigned → first touch;
- speed to lead = handoff → first touch, banded 0–5, 5–15, 15–60, 60+ minutes.
SLA compliance per rep and team, over every assignment in the period:
met = touched with no breach, breached = breach recorded; compliance =
met / (met + breached); assignments still inside their window are "pending".

Every median, percentile, band and SLA count is computed by the database
(reports.selectors.distribution): only the figures come back, whatever the
period's size.
"""

from __future__ import annotations

from collections import defaultdict

from django.db import connections
from django.db.models import Case, Count, F, Q, Value, When, Window
from django.db.models.functions import Lead as NextValue

from leads.models import Lead, LeadStage
from pipeline.models import Assignment, AssignmentMethod, StageTransition
from reports.formatting import rate
from reports.period import ReportQuery
from reports.selectors.distribution import (
    Measure,
    at_least_zero,
    compiled,
    seconds_between,
    summarize,
)

STAY_STAGES = [
    LeadStage.NEW,
    LeadStage.MQL,
    LeadStage.SAL,
    LeadStage.SQL,
    LeadStage.OPPORTUNITY,
    LeadStage.RECYCLED,
]
BANDS = [
    ("0–5 min", 0, 5 * 60),
    ("5–15 min", 5 * 60, 15 * 60),
    ("15–60 min", 15 * 60, 3600),
    ("60+ min", 3600, None),
]


def time_in_stage(query: ReportQuery) -> list[dict]:
    """Per stage: stays closed, median and P90 seconds, stays still open (one query)."""
    rows = (
        StageTransition.objects.filter(query.lead_exists(), occurred_at__gte=query.start_at)
        .annotate(
            left_at=Window(
                NextValue("occurred_at"),
                partition_by=[F("lead_id")],
                order_by=[F("occurred_at").asc(), F("pk").asc()],
            ),
            # Transitions after the period only close the stays of the period.
            in_period=Case(When(occurred_at__lt=query.end_at, then=Value(1)), default=Value(0)),
        )
        .order_by()
        .values("to_stage", "occurred_at", "left_at", "in_period")
    )
    vendor = connections[rows.db].vendor
    stay = seconds_between("r.left_at", "r.occurred_at", vendor=vendor)
    figures = summarize(
        rows,
        group="r.to_stage",
        measures=[Measure("stay", f"CASE WHEN r.in_period = 1 THEN {stay} END", percents=(50, 90))],
        counts={"open": "r.in_period = 1 AND r.left_at IS NULL"},
    )
    return stay_table(figures)


def stay_table(figures: dict) -> list[dict]:
    """The time-in-stage rows from {stage: {"stay_n", "stay_p50", "stay_p90", "open"}}
    (live figures or merged rollups)."""
    labels = dict(LeadStage.choices)
    out = []
    for s in STAY_STAGES:
        f = figures.get(s.value, {})
        out.append(
            {
                "stage": s.value,
                "label": labels[s],
                "stays": f.get("stay_n") or 0,
                "median": f.get("stay_p50"),
                "p90": f.get("stay_p90"),
                "open": f.get("open") or 0,
            }
        )
    return out


def speed_rows(assignments, *, keep: tuple[str, ...] = ()) -> tuple[str, tuple]:
    """(SQL, params) of one row per assignment (a queryset of Assignment, filtered):
    first_touched_at, system_s, rep_s, total_s (seconds) and the `keep` columns.

    The handoff is the latest MQL move at or before each assignment, from one join
    of the assignments with their leads' moves; only an assignment with no such move
    reads its lead's creation time."""
    assignments = (
        assignments.exclude(method=AssignmentMethod.SLA_REASSIGN)
        .order_by()
        .values("pk", "organization_id", "lead_id", "assigned_at", "first_touched_at", *keep)
    )
    sql, params = compiled(assignments)
    kept = "".join(f", a.{name}" for name in keep)
    moves, leads = StageTransition._meta.db_table, Lead._meta.db_table
    vendor = connections[assignments.db].vendor
    created = f"(SELECT l.created_at FROM {leads} l WHERE l.id = a.lead_id)"
    if vendor == "postgresql":
        # One backward index step per assignment ((organization, lead, occurred_at)),
        # never a hash of every MQL move of the tenant.
        handoff = (
            f"LEFT JOIN LATERAL (SELECT t.occurred_at FROM {moves} t"
            f" WHERE t.organization_id = a.organization_id AND t.lead_id = a.lead_id"
            f" AND t.to_stage = %s AND t.occurred_at <= a.assigned_at"
            f" ORDER BY t.occurred_at DESC LIMIT 1) h ON true"
        )
        # OFFSET 0 keeps the rows a derived table: inlined, the COALESCE (and its
        # subquery) would be copied into every figure computed from handoff_at.
        group = " OFFSET 0"
        handoff_at = "h.occurred_at"
    else:  # SQLite has no LATERAL: the same as a join and a group (an index loop there)
        handoff = (
            f"LEFT JOIN {moves} t ON t.organization_id = a.organization_id"
            f" AND t.lead_id = a.lead_id AND t.to_stage = %s AND t.occurred_at <= a.assigned_at"
        )
        group = f" GROUP BY a.pk, a.lead_id, a.assigned_at, a.first_touched_at{kept}"
        handoff_at = "MAX(t.occurred_at)"
    # COALESCE stops at the first value: the creation is read only when needed.
    handoffs = (
        f"SELECT a.pk, a.assigned_at, a.first_touched_at{kept},"
        f" COALESCE({handoff_at}, {created}) AS handoff_at FROM ({sql}) a {handoff}{group}"
    )
    # Each duration once per row (seconds, never below zero); the figures use them.
    seconds = {
        "system_s": ("b.assigned_at", "b.handoff_at"),
        "rep_s": ("b.first_touched_at", "b.assigned_at"),
        "total_s": ("b.first_touched_at", "b.handoff_at"),
    }
    durations = ", ".join(
        f"{at_least_zero(seconds_between(later, earlier, vendor=vendor))} AS {name}"
        for name, (later, earlier) in seconds.items()
    )
    kept = "".join(f", b.{name}" for name in keep)
    return (
        f"SELECT b.first_touched_at{kept}, {durations} FROM ({handoffs}) b",
        (*params, LeadStage.MQL.value),
    )


def band_condition(i: int, column: str = "r.total_s") -> str:
    """SQL: a touched assignment whose speed to lead falls in BANDS[i]."""
    _, low, high = BANDS[i]
    cond = f"{column} >= {low}" + ("" if high is None else f" AND {column} < {high}")
    return f"r.first_touched_at IS NOT NULL AND {cond}"


def _speed_figures(query: ReportQuery) -> dict:
    """Speed-to-lead distributions and bands over the period's first assignments (one
    statement)."""
    rows = speed_rows(
        Assignment.objects.filter(
            query.lead_exists(),
            assigned_at__gte=query.start_at,
            assigned_at__lt=query.end_at,
        )
    )
    bands = {}
    for i in range(len(BANDS)):
        bands[f"band{i}"] = band_condition(i)
    figures = summarize(
        rows,
        measures=[
            Measure("system", "r.system_s", percents=(50, 95)),
            Measure("rep", "r.rep_s", percents=(50, 95)),
            Measure("total", "r.total_s", percents=(50, 95)),
        ],
        counts={"untouched": "r.first_touched_at IS NULL", **bands},
    )
    return figures.get(None, {})


def _sla_counts(query: ReportQuery) -> list[dict]:
    """Assigned / met / breached per (rep, team) over every assignment of the period,
    with the rep's and the team's names (one query)."""
    return list(
        Assignment.objects.filter(
            query.lead_exists(),
            assigned_at__gte=query.start_at,
            assigned_at__lt=query.end_at,
        )
        .order_by()
        .values(
            "membership_id",
            "team_id",
            "membership__user__full_name",
            "membership__user__email",
            "team__name",
        )
        .annotate(
            assigned=Count("pk"),
            breached=Count("pk", filter=Q(breached_at__isnull=False)),
            met=Count("pk", filter=Q(breached_at__isnull=True, first_touched_at__isnull=False)),
        )
    )


def speed_to_lead(query: ReportQuery) -> dict:
    """Speed-to-lead figures, bands, and SLA compliance by rep and team (two queries)."""
    return speed_table(_speed_figures(query), _sla_counts(query))


def speed_table(figures: dict, sla_counts) -> dict:
    """The page's speed-to-lead figures from {"<m>_n", "<m>_p50", "<m>_p95",
    "untouched", "band<i>"} and SLA count rows (live or merged rollups)."""
    per_rep: dict = defaultdict(lambda: {"assigned": 0, "met": 0, "breached": 0, "pending": 0})
    per_team: dict = defaultdict(lambda: {"assigned": 0, "met": 0, "breached": 0, "pending": 0})
    names: dict = {}
    teams: dict = {}
    for row in sla_counts:
        rep_id, team_id = row["membership_id"], row["team_id"]
        names[rep_id] = (
            row["membership__user__full_name"]
            or (row["membership__user__email"] or "").split("@")[0]
        )  # User.display_name
        if team_id:
            teams[team_id] = row["team__name"]
        pending = row["assigned"] - row["met"] - row["breached"]
        for bucket in (per_rep[rep_id], per_team[team_id]):
            bucket["assigned"] += row["assigned"]
            bucket["met"] += row["met"]
            bucket["breached"] += row["breached"]
            bucket["pending"] += pending

    def summary(name):
        return {
            "median": figures.get(f"{name}_p50"),
            "p95": figures.get(f"{name}_p95"),
            "count": figures.get(f"{name}_n") or 0,
        }

    def compliance(groups, labels, fallback):
        out = [
            {
                "label": labels.get(key, fallback),
                **c,
                "compliance": rate(c["met"], c["met"] + c["breached"]),
            }
            for key, c in groups.items()
        ]
        return sorted(
            out, key=lambda r: (r["compliance"] is None, r["compliance"] or 0, r["label"])
        )

    touched = figures.get("total_n") or 0
    return {
        "system": summary("system"),
        "rep": summary("rep"),
        "total": summary("total"),
        "untouched": figures.get("untouched") or 0,
        "bands": [
            {
                "label": label,
                "count": figures.get(f"band{i}") or 0,
                "share": rate(figures.get(f"band{i}") or 0, touched),
            }
            for i, (label, _, _) in enumerate(BANDS)
        ],
        "by_rep": compliance(per_rep, names, "Former member"),
        "by_team": compliance(per_team, teams, "No team"),
    }
