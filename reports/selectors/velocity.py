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
"""

from __future__ import annotations

from collections import defaultdict

from django.db.models import F, OuterRef, Subquery, Window
from django.db.models.functions import Coalesce
from django.db.models.functions import Lead as NextValue

from accounts.models import Membership
from leads.models import LeadStage
from pipeline.models import Assignment, AssignmentMethod, StageTransition, Team
from reports.formatting import median, percentile, rate
from reports.period import ReportQuery

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
        StageTransition.objects.filter(query.lead_q("lead__"), occurred_at__gte=query.start_at)
        .annotate(
            left_at=Window(
                NextValue("occurred_at"),
                partition_by=[F("lead_id")],
                order_by=[F("occurred_at").asc(), F("pk").asc()],
            )
        )
        .order_by()
        .values_list("to_stage", "occurred_at", "left_at")
    )
    stays: dict[str, list[float]] = defaultdict(list)
    still: dict[str, int] = defaultdict(int)
    for stage, entered, left in rows:
        if entered >= query.end_at:
            continue  # only its predecessor needed it
        if left is None:
            still[stage] += 1
        else:
            stays[stage].append((left - entered).total_seconds())
    labels = dict(LeadStage.choices)
    return [
        {
            "stage": s.value,
            "label": labels[s],
            "stays": len(stays[s]),
            "median": median(stays[s]),
            "p90": percentile(stays[s], 90),
            "open": still[s],
        }
        for s in STAY_STAGES
    ]


def speed_to_lead(query: ReportQuery) -> dict:
    """Speed-to-lead figures, bands, and SLA compliance by rep and team (≤ three queries)."""
    handoff = (
        StageTransition.objects.filter(
            lead_id=OuterRef("lead_id"),
            to_stage=LeadStage.MQL,
            occurred_at__lte=OuterRef("assigned_at"),
        )
        .order_by("-occurred_at", "-pk")
        .values("occurred_at")[:1]
    )
    rows = list(
        Assignment.objects.filter(
            query.lead_q("lead__"),
            assigned_at__gte=query.start_at,
            assigned_at__lt=query.end_at,
        )
        .annotate(handoff_at=Coalesce(Subquery(handoff), F("lead__created_at")))
        .order_by()
        .values_list(
            "handoff_at",
            "assigned_at",
            "first_touched_at",
            "breached_at",
            "membership_id",
            "team_id",
            "method",
        )
    )
    system, rep, total = [], [], []
    bands = [0] * len(BANDS)
    untouched = 0
    per_rep: dict = defaultdict(lambda: {"assigned": 0, "met": 0, "breached": 0, "pending": 0})
    per_team: dict = defaultdict(lambda: {"assigned": 0, "met": 0, "breached": 0, "pending": 0})
    for handoff_at, assigned_at, touched_at, breached_at, rep_id, team_id, method in rows:
        outcome = "breached" if breached_at else ("met" if touched_at else "pending")
        for bucket in (per_rep[rep_id], per_team[team_id]):
            bucket["assigned"] += 1
            bucket[outcome] += 1
        if method == AssignmentMethod.SLA_REASSIGN:
            continue
        system.append(max(0.0, (assigned_at - handoff_at).total_seconds()))
        if touched_at is None:
            untouched += 1
            continue
        rep.append(max(0.0, (touched_at - assigned_at).total_seconds()))
        speed = max(0.0, (touched_at - handoff_at).total_seconds())
        total.append(speed)
        for i, (_, low, high) in enumerate(BANDS):
            if speed >= low and (high is None or speed < high):
                bands[i] += 1
                break

    def summary(values):
        return {"median": median(values), "p95": percentile(values, 95), "count": len(values)}

    rep_ids = [pk for pk in per_rep if pk]
    team_ids = [pk for pk in per_team if pk]
    names = (
        {
            m.pk: m.user.display_name
            for m in Membership.objects.filter(pk__in=rep_ids).select_related("user")
        }
        if rep_ids
        else {}
    )
    teams = dict(Team.objects.filter(pk__in=team_ids).values_list("pk", "name")) if team_ids else {}

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

    touched = len(total)
    return {
        "system": summary(system),
        "rep": summary(rep),
        "total": summary(total),
        "untouched": untouched,
        "bands": [
            {"label": label, "count": n, "share": rate(n, touched)}
            for (label, _, _), n in zip(BANDS, bands, strict=True)
        ],
        "by_rep": compliance(per_rep, names, "Former member"),
        "by_team": compliance(per_team, teams, "No team"),
    }
