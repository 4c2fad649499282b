"""The marketing dashboard (the reports index): headline KPIs vs the previous
period, lead volume by channel, campaigns, the cohort funnel and the lead
velocity rate. A fixed number of queries whatever the data size."""

from __future__ import annotations

from accounts.decorators import org_view
from accounts.permissions import Perm
from leads.models import Channel
from reports.charts import Chart, Kpi
from reports.export import Column, ReportTable
from reports.formatting import rate, ratio
from reports.period import ReportQuery
from reports.selectors import cost as cost_selectors
from reports.selectors import funnel as funnel_selectors
from reports.selectors import rollups
from reports.selectors import volume as volume_selectors
from reports.selectors.funnel import FunnelCounts
from reports.views import render_report

CHANNEL_LABELS = dict(Channel.choices)


class Live:
    """The live selectors (the slow path), shaped like `reports.selectors.rollups`."""

    volume_by_bucket = staticmethod(volume_selectors.volume_by_bucket)
    volume_totals = staticmethod(volume_selectors.volume_totals)
    volume_by_campaign = staticmethod(volume_selectors.volume_by_campaign)
    mql_months = staticmethod(volume_selectors.mql_months)
    funnel_total = staticmethod(funnel_selectors.funnel_total)
    campaign_economics = staticmethod(cost_selectors.campaign_economics)


def volume_chart(query: ReportQuery, *, slug: str = "volume", source=Live) -> Chart:
    """New leads per bucket, stacked by channel, with a table (buckets × channels)."""
    volume = source.volume_by_bucket(query)
    series = sorted(volume["series"].items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    keys = [key for key, _ in series]
    labels = [query.bucket_label(b) for b in volume["buckets"]]
    columns = [Column("bucket", "Period", "text")]
    columns += [Column(k or "none", CHANNEL_LABELS.get(k, "Unknown source")) for k in keys]
    columns.append(Column("total", "Total"))
    rows = []
    for i, label in enumerate(labels):
        row = {"bucket": label, "total": 0}
        for key, counts in series:
            row[key or "none"] = counts[i]
            row["total"] += counts[i]
        rows.append(row)
    footer = {"bucket": "Total", "total": volume["total"]}
    footer.update({key or "none": sum(c) for key, c in series})
    return Chart(
        slug=slug,
        title="New leads by channel",
        subtitle=f"Per {query.grain}, by the channel that brought each lead in",
        kind="stacked",
        labels=labels,
        datasets=[{"label": CHANNEL_LABELS.get(k, "Unknown source"), "data": c} for k, c in series],
        table=ReportTable(
            slug=slug, title="New leads by channel", columns=columns, rows=rows, footer=footer
        ),
    )


def funnel_chart(counts: FunnelCounts, *, slug: str = "funnel") -> Chart:
    steps = counts.steps()
    return Chart(
        slug=slug,
        title="Funnel of the period's leads",
        subtitle="Leads that arrived in the period and how far they have got since",
        kind="funnel",
        labels=[s["label"] for s in steps],
        datasets=[{"label": "Leads", "data": [s["count"] for s in steps]}],
        height=260,
        table=ReportTable(
            slug=slug,
            title="Funnel",
            columns=[
                Column("label", "Stage", "text"),
                Column("count", "Leads"),
                Column("step_rate", "From previous step", "pct"),
                Column("overall_rate", "From lead", "pct"),
            ],
            rows=steps,
            note="A stage counts as reached when the lead got there or beyond (skipped stages "
            "count as passed); a lead counts once per stage however often it returned.",
        ),
    )


def lvr_chart(query: ReportQuery, *, slug: str = "lvr", source=Live) -> Chart:
    months = source.mql_months(query)
    rows = [
        {"month": m["month"].strftime("%b %Y"), "mqls": m["mqls"], "lvr": m["lvr"]} for m in months
    ]
    return Chart(
        slug=slug,
        title="MQLs per month and lead velocity rate",
        subtitle="LVR: growth of MQLs over the month before",
        kind="bar",
        labels=[r["month"] for r in rows],
        datasets=[
            {"label": "MQLs", "data": [r["mqls"] for r in rows]},
            {
                "label": "Lead velocity rate",
                "data": [r["lvr"] for r in rows],
                "type": "line",
                "axis": "y1",
                "format": "pct",
            },
        ],
        table=ReportTable(
            slug=slug,
            title="Lead velocity rate",
            columns=[
                Column("month", "Month", "text"),
                Column("mqls", "MQLs"),
                Column("lvr", "LVR", "pct"),
            ],
            rows=rows,
        ),
    )


def campaign_chart(query: ReportQuery, *, slug: str = "campaigns", source=Live) -> Chart:
    rows = source.volume_by_campaign(query)
    top = rows[:10]
    columns = [
        Column("campaign", "Campaign", "text"),
        Column("channel", "Channel", "text"),
        Column("leads", "New leads"),
    ]
    if query.has_previous:
        columns += [Column("previous", "Previous period"), Column("change", "Change", "change")]
    datasets = [{"label": "This period", "data": [r["leads"] for r in top]}]
    if query.has_previous:
        datasets.append(
            {"label": "Previous period", "data": [r["previous"] for r in top], "color": "#c7d2fe"}
        )
    return Chart(
        slug=slug,
        title="New leads by campaign",
        subtitle="Top 10 in the chart; every campaign in the table",
        kind="hbar",
        labels=[r["campaign"] for r in top],
        datasets=datasets,
        height=max(200, 36 * len(top) + 60),
        table=ReportTable(slug=slug, title="New leads by campaign", columns=columns, rows=rows),
    )


def marketing_context(query: ReportQuery, *, fast: bool = True) -> dict:
    """Everything on the dashboard. Org-wide queries read the rollups when they are
    built (`reports.selectors.rollups`); `fast=False` forces the live selectors."""
    state = rollups.rollup_state(query) if fast else None
    source = rollups if state is not None else Live
    leads_now, leads_before = source.volume_totals(query)
    funnel = source.funnel_total(query)
    before = source.funnel_total(query.previous) if query.has_previous else FunnelCounts()
    economics = source.campaign_economics(query)
    lvr = lvr_chart(query, source=source)
    last_lvr = lvr.table.rows[-1]["lvr"] if lvr.table.rows else None
    prev_lvr = lvr.table.rows[-2]["lvr"] if len(lvr.table.rows) > 1 else None
    kpis = [
        Kpi("New leads", leads_now, "int", leads_before, icon="person-plus"),
        Kpi(
            "MQLs",
            funnel.mql,
            "int",
            before.mql if query.has_previous else None,
            icon="fire",
            help="Leads of the period that became marketing qualified",
        ),
        Kpi("MQL rate", funnel.mql_rate, "pct", before.mql_rate, icon="percent"),
        Kpi("Won", funnel.won, "int", before.won if query.has_previous else None, icon="trophy"),
        Kpi(
            "Win rate",
            funnel.win_rate,
            "pct",
            before.win_rate,
            icon="bullseye",
            help="Won / (won + lost) among the period's leads",
        ),
        Kpi(
            "Lead velocity",
            last_lvr,
            "pct",
            prev_lvr,
            icon="speedometer2",
            help="MQL growth of the period's last month over the month before",
        ),
    ]
    total = economics["total"]
    cost_table = ReportTable(
        slug="cost",
        title="Cost per channel",
        columns=[
            Column("label", "Channel", "text"),
            Column("cost", "Cost", "money"),
            Column("leads", "Leads"),
            Column("won", "Customers"),
            Column("cpl", "CPL", "money"),
            Column("cpa", "CPA", "money"),
            Column("revenue", "Won revenue", "money"),
            Column("roi", "ROI", "pct"),
        ],
        rows=economics["channels"],
        footer=total,
        note="Lifetime figures of the campaigns that ran in the period.",
    )
    return {
        "kpis": kpis,
        "volume": volume_chart(query, source=source),
        "funnel": funnel_chart(funnel),
        "lvr": lvr,
        "campaigns": campaign_chart(query, source=source),
        "as_of": state.refreshed_at if state is not None else None,
        "cost": cost_table,
        "cpl": ratio(total["cost"], total["leads"]),
        "lead_to_won": rate(funnel.won, funnel.leads),
    }


@org_view(Perm.VIEW_REPORTS)
def marketing_dashboard(request):
    return render_report(
        request,
        template="reports/marketing.html",
        build=marketing_context,
        export_prefix="marketing",
    )
