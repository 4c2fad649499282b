"""Funnel & velocity report: the cohort funnel with conversion per arrival
period, win rate, time in each stage, speed to lead and SLA compliance.

The cohort funnel reads the dashboard rollups when they can answer the query (as
the marketing dashboard does), and so does velocity for org-wide views (day
histograms merged, percentiles within 1%: reports.selectors.velocity_rollups); otherwise it
is computed in the database from the period's history. A fixed number of queries
whatever the data size."""

from __future__ import annotations

from accounts.decorators import org_view
from accounts.permissions import Perm
from reports.charts import Chart, Kpi
from reports.export import Column, ReportTable
from reports.period import ReportQuery
from reports.selectors import rollups, velocity_rollups
from reports.selectors.funnel import STEPS, FunnelCounts, cohort_funnel
from reports.selectors.velocity import speed_table, speed_to_lead, stay_table, time_in_stage
from reports.views import render_report
from reports.views.marketing import funnel_chart

SLA_COLUMNS = [
    Column("assigned", "Assigned"),
    Column("met", "Met"),
    Column("breached", "Breached"),
    Column("pending", "Pending"),
    Column("compliance", "Compliance", "pct"),
]


def _cohort_chart(query: ReportQuery, by_bucket: dict) -> Chart:
    rows = []
    for bucket in query.buckets():
        c = by_bucket.get(bucket) or FunnelCounts()
        row = {"cohort": query.bucket_label(bucket)}
        row.update({key: c.reached[i] for i, (key, _) in enumerate(STEPS)})
        row.update(mql_rate=c.mql_rate, sql_rate=c.sql_rate, lost=c.lost, win_rate=c.win_rate)
        rows.append(row)
    columns = [Column("cohort", "Arrived", "text")]
    columns += [Column(key, label) for key, label in STEPS]
    columns += [
        Column("lost", "Lost"),
        Column("mql_rate", "MQL rate", "pct"),
        Column("sql_rate", "SQL rate", "pct"),
        Column("win_rate", "Win rate", "pct"),
    ]
    return Chart(
        slug="cohorts",
        title="Conversion by arrival cohort",
        subtitle="Each lead is credited to the period it arrived in, however late it converts",
        kind="line",
        labels=[r["cohort"] for r in rows],
        datasets=[{"label": label, "data": [r[key] for r in rows]} for key, label in STEPS],
        table=ReportTable(slug="cohorts", title="Cohorts", columns=columns, rows=rows),
    )


def funnel_context(query: ReportQuery, *, fast: bool = True) -> dict:
    """Everything on the page; `fast=False` computes the cohorts from the facts."""
    state = rollups.rollup_state(query) if fast else None
    if state is not None:
        by_bucket = rollups.cohort_funnel_by_bucket(query)
    else:
        by_bucket = cohort_funnel(query, group="bucket")
    total = FunnelCounts.total(by_bucket.values())
    velocity_fast = velocity_rollups.velocity_usable(query, state)
    if velocity_fast:
        stay_figures, speed_figures = velocity_rollups.velocity_figures(query)
        stays = stay_table(stay_figures)
        speed = speed_table(speed_figures, velocity_rollups.sla_counts(query))
    else:
        stays = time_in_stage(query)
        speed = speed_to_lead(query)
    kpis = [
        Kpi("Leads", total.leads, icon="people"),
        Kpi("Lead → won", total.lead_to_won, "pct", icon="trophy"),
        Kpi(
            "Win rate",
            total.win_rate,
            "pct",
            icon="bullseye",
            help="Won / (won + lost) among the period's leads",
        ),
        Kpi(
            "Speed to lead",
            speed["total"]["median"],
            "duration",
            good_when="down",
            icon="stopwatch",
            help="Median handoff → first touch",
        ),
        Kpi(
            "System delay",
            speed["system"]["median"],
            "duration",
            good_when="down",
            icon="cpu",
            help="Median handoff → assignment",
        ),
        Kpi(
            "Rep delay",
            speed["rep"]["median"],
            "duration",
            good_when="down",
            icon="person",
            help="Median assignment → first touch",
        ),
    ]
    stage_chart = Chart(
        slug="stages",
        title="Time in each stage",
        subtitle="Stays that began in the period and have ended: median and 90th percentile",
        kind="hbar",
        value_format="duration",
        labels=[r["label"] for r in stays],
        datasets=[
            {"label": "Median", "data": [r["median"] for r in stays]},
            {"label": "P90", "data": [r["p90"] for r in stays], "color": "#c7d2fe"},
        ],
        table=ReportTable(
            slug="stages",
            title="Time in stage",
            columns=[
                Column("label", "Stage", "text"),
                Column("stays", "Stays ended"),
                Column("median", "Median", "duration"),
                Column("p90", "P90", "duration"),
                Column("open", "Still there"),
            ],
            rows=stays,
        ),
    )
    speed_rows = [
        {"label": "System delay (handoff → assigned)", **speed["system"]},
        {"label": "Rep delay (assigned → first touch)", **speed["rep"]},
        {"label": "Speed to lead (handoff → first touch)", **speed["total"]},
    ]
    bands_chart = Chart(
        slug="speed",
        title="Speed to lead",
        subtitle=f"Handoff to first touch · {speed['untouched']} assigned lead(s) not touched yet",
        kind="bar",
        labels=[b["label"] for b in speed["bands"]],
        datasets=[{"label": "Leads", "data": [b["count"] for b in speed["bands"]]}],
        height=220,
        table=ReportTable(
            slug="speed",
            title="Speed to lead",
            columns=[
                Column("label", "Measure", "text"),
                Column("count", "Leads"),
                Column("median", "Median", "duration"),
                Column("p95", "P95", "duration"),
            ],
            rows=speed_rows,
            note="Handoff = the lead's move into MQL before the assignment (its creation if it "
            "never passed MQL). Reassignments after an SLA breach are left out.",
        ),
    )
    bands_table = ReportTable(
        slug="bands",
        title="Speed bands",
        columns=[
            Column("label", "Band", "text"),
            Column("count", "Leads"),
            Column("share", "Share", "pct"),
        ],
        rows=speed["bands"],
    )
    return {
        "kpis": kpis,
        "as_of": state.refreshed_at if state is not None else None,
        "velocity_as_of": state.velocity_at if velocity_fast else None,
        "funnel": funnel_chart(total),
        "cohorts": _cohort_chart(query, by_bucket),
        "stages": stage_chart,
        "speed": bands_chart,
        "bands": bands_table,
        "sla_reps": ReportTable(
            slug="sla-reps",
            title="SLA compliance by rep",
            columns=[Column("label", "Rep", "text"), *SLA_COLUMNS],
            rows=speed["by_rep"],
            note="Met = touched without a breach; compliance = met / (met + breached).",
        ),
        "sla_teams": ReportTable(
            slug="sla-teams",
            title="SLA compliance by team",
            columns=[Column("label", "Team", "text"), *SLA_COLUMNS],
            rows=speed["by_team"],
        ),
    }


@org_view(Perm.VIEW_REPORTS)
def funnel_report(request):
    return render_report(
        request, template="reports/funnel.html", build=funnel_context, export_prefix="funnel"
    )
