"""Sales dashboard: each rep's and team's activity, SLA, load, and the capacity
picture (is a bubble of MQLs building up?)."""

from __future__ import annotations

from django.utils import timezone

from accounts.decorators import org_view
from accounts.permissions import Perm
from reports.charts import Chart, Kpi
from reports.export import Column, ReportTable
from reports.period import ReportQuery
from reports.selectors.sales import Capacity, RepRow, SalesDashboard, sales_dashboard
from reports.views import render_report
from reports.views.digest import digest_context

REP_COLUMNS = [
    Column("name", "Rep", "text"),
    Column("assigned", "Assigned"),
    Column("accepted", "Accepted"),
    Column("accept_rate", "Accept rate", "pct"),
    Column("qualified", "Qualified (SQL)"),
    Column("won", "Won"),
    # Text, one amount per currency: a USD and a EUR win are never added up.
    Column("won_amount_text", "Won amount", "text"),
    Column("sla_met", "SLA met"),
    Column("sla_missed", "SLA missed"),
    Column("sla_compliance", "SLA compliance", "pct"),
]
LOAD_COLUMNS = [
    Column("name", "Rep", "text"),
    Column("open_leads", "Open leads"),
    Column("capacity", "Capacity"),
    Column("load", "Load", "pct"),
    Column("free_capacity", "Free"),
    Column("not_worked", "Accepted, not worked"),
    Column("status", "Status", "text"),
]


def _rep_dict(row: RepRow) -> dict:
    data = {c.key: getattr(row, c.key) for c in REP_COLUMNS + LOAD_COLUMNS if c.key != "status"}
    data["status"] = "Away" if row.is_away else ("No seat" if row.capacity is None else "")
    if row.load is not None and row.load >= 1:
        data["flag"], data["flag_label"] = "At or over capacity", "Full"
    return data


def _activity_chart(dash: SalesDashboard) -> Chart:
    reps = dash.reps
    table = ReportTable(
        slug="reps",
        title="Reps",
        columns=REP_COLUMNS,
        rows=[_rep_dict(r) for r in reps],
        footer=_rep_dict(dash.totals) if reps else None,
        note="Assigned and SLA: the assignment's rep (a reassigned lead counts for both). "
        "SLA met: touched and accepted within their deadlines; missed: a deadline passed first "
        "(still-open clocks are not counted). Qualified: moves to SQL by the rep (or on their "
        "lead). Won: deals closed won, credited to the deal owner.",
    )
    return Chart(
        slug="rep-activity",
        title="What each rep did",
        subtitle="Assigned, accepted, qualified and won in the period",
        kind="bar",
        labels=[r.name for r in reps],
        datasets=[
            {"label": "Assigned", "data": [r.assigned for r in reps]},
            {"label": "Accepted", "data": [r.accepted for r in reps]},
            {"label": "Qualified", "data": [r.qualified for r in reps]},
            {"label": "Won", "data": [r.won for r in reps]},
        ],
        table=table,
    )


def _load_chart(dash: SalesDashboard) -> Chart:
    reps = dash.reps
    return Chart(
        slug="rep-load",
        title="Load vs capacity",
        subtitle="Open leads each rep holds now, against the capacity of their seat",
        kind="hbar",
        labels=[r.name for r in reps],
        datasets=[
            {"label": "Open leads", "data": [r.open_leads for r in reps]},
            {"label": "Capacity", "data": [r.capacity or 0 for r in reps], "color": "#cbd5e1"},
        ],
        table=ReportTable(
            slug="load",
            title="Load",
            columns=LOAD_COLUMNS,
            rows=[_rep_dict(r) for r in reps],
            note="Capacity is per rep (their largest seat); away reps have no free capacity.",
        ),
        height=max(160, 40 * len(reps) + 60),
    )


CALL_COLUMNS = [
    Column("name", "Rep", "text"),
    Column("connected_leads", "Leads reached"),
    Column("attempts_avg", "Calls before connect (avg)", "ratio"),
    Column("attempts_median", "Calls before connect (median)", "ratio"),
]


def _calls_chart(dash: SalesDashboard) -> Chart:
    reps = [r for r in dash.reps if r.connected_leads]
    rows = [{c.key: getattr(r, c.key) for c in CALL_COLUMNS} for r in reps]
    return Chart(
        slug="call-attempts",
        title="Call attempts before first connect",
        subtitle="Per lead first reached by phone in the period: calls logged before it",
        kind="bar",
        labels=[r.name for r in reps],
        datasets=[
            {"label": "Median", "data": [r.attempts_median for r in reps]},
            {"label": "Average", "data": [r.attempts_avg for r in reps]},
        ],
        value_format="ratio",
        table=ReportTable(
            slug="call-attempts",
            title="Calls before first connect",
            columns=CALL_COLUMNS,
            rows=rows,
            footer={c.key: getattr(dash.totals, c.key) for c in CALL_COLUMNS} if rows else None,
            note="A call counts when logged with Log touch; its outcome says whether it "
            "connected. Credited to the lead's owner; 0 means the first call got through.",
        ),
    )


def _flow_chart(query: ReportQuery, capacity: Capacity) -> Chart:
    buckets: dict = {day: [0, 0] for day in query.buckets()}
    for d in capacity.flow:
        bucket = buckets[query.bucket_start(d.day)]
        bucket[0] += d.arrivals
        bucket[1] += d.accepted
    rows, backlog = [], 0
    for day, (arrivals, accepted) in buckets.items():
        backlog += arrivals - accepted
        rows.append(
            {
                "bucket": query.bucket_label(day),
                "arrivals": arrivals,
                "accepted": accepted,
                "net": arrivals - accepted,
                "backlog": backlog,
            }
        )
    return Chart(
        slug="mql-flow",
        title="MQL arrivals vs sales accepts",
        subtitle="The gap between the lines is the queue building up",
        kind="line",
        labels=[r["bucket"] for r in rows],
        datasets=[
            {"label": "MQLs arrived", "data": [r["arrivals"] for r in rows]},
            {"label": "Accepted by sales", "data": [r["accepted"] for r in rows]},
            {
                "label": "Queue growth (cumulative)",
                "data": [r["backlog"] for r in rows],
                "dashed": True,
                "color": "#ef4444",
            },
        ],
        table=ReportTable(
            slug="flow",
            title="Arrivals and accepts",
            columns=[
                Column("bucket", query.grain.capitalize(), "text"),
                Column("arrivals", "MQLs arrived"),
                Column("accepted", "Accepted"),
                Column("net", "Queue change"),
                Column("backlog", "Cumulative change"),
            ],
            rows=rows,
        ),
    )


def _team_table(dash: SalesDashboard) -> ReportTable:
    return ReportTable(
        slug="teams",
        title="Teams",
        columns=[Column("name", "Team", "text"), *REP_COLUMNS[1:], *LOAD_COLUMNS[1:5]],
        rows=[_rep_dict(row) | {"name": name} for name, row in dash.teams],
        note="A team's numbers are the sum of its members' (a rep in two teams counts in both).",
    )


def _not_worked_table(dash: SalesDashboard, now) -> ReportTable:
    return ReportTable(
        slug="not-worked",
        title="Accepted but not worked",
        columns=[
            Column("lead", "Lead", "text"),
            Column("rep", "Rep", "text"),
            Column("accepted_at", "Accepted", "text"),
            Column("waiting", "Waiting", "duration"),
        ],
        rows=[
            {
                "lead": str(a.lead),
                "rep": a.membership.user.display_name,
                "accepted_at": timezone.localtime(a.accepted_at).strftime("%d %b %H:%M"),
                "waiting": (now - a.accepted_at).total_seconds(),
            }
            for a in dash.not_worked
        ],
        note="Leads a rep accepted but has not called, met or noted yet; oldest first.",
    )


def _kpis(dash: SalesDashboard, previous: SalesDashboard | None) -> list[Kpi]:
    t, p = dash.totals, previous.totals if previous else None
    return [
        Kpi("Assigned", t.assigned, previous=p and p.assigned, icon="person-plus"),
        Kpi("Accepted", t.accepted, previous=p and p.accepted, icon="hand-thumbs-up"),
        Kpi("Qualified", t.qualified, previous=p and p.qualified, icon="patch-check"),
        Kpi("Won", t.won, previous=p and p.won, icon="trophy"),
        Kpi(
            "SLA compliance",
            t.sla_compliance,
            kind="pct",
            previous=p and p.sla_compliance,
            icon="stopwatch",
        ),
        Kpi(
            "MQLs waiting",
            dash.capacity.waiting,
            good_when="down",
            icon="hourglass-split",
            help="MQLs not yet accepted, now",
        ),
    ]


@org_view(Perm.VIEW_REPORTS)
def sales_report(request):
    now = timezone.now()

    def build(query: ReportQuery) -> dict:
        dash = sales_dashboard(organization_id=request.organization.pk, query=query, now=now)
        previous = (
            sales_dashboard(organization_id=request.organization.pk, query=query.previous, now=now)
            if query.has_previous
            else None
        )
        return {
            "dash": dash,
            "capacity": dash.capacity,
            "kpis": _kpis(dash, previous),
            "charts": [
                _activity_chart(dash),
                _flow_chart(query, dash.capacity),
                _calls_chart(dash),
            ],
            "load_chart": _load_chart(dash),
            "teams": _team_table(dash),
            "not_worked": _not_worked_table(dash, now),
            **digest_context(request),
        }

    return render_report(request, template="reports/sales.html", build=build, export_prefix="sales")
