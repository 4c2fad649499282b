"""Source & campaign report: which sources bring leads that convert (and which to
gate), lead volume per channel over time, and campaign economics."""

from __future__ import annotations

from accounts.decorators import org_view
from accounts.permissions import Perm
from reports.charts import Chart
from reports.export import Column, ReportTable
from reports.period import ReportQuery
from reports.selectors.cost import campaign_economics
from reports.selectors.sources import source_quality
from reports.views import render_report
from reports.views.marketing import volume_chart

QUALITY_COLUMNS = [
    Column("leads", "Leads"),
    Column("junk_rate", "Junk rate", "pct"),
    Column("mql_rate", "MQL rate", "pct"),
    Column("sql_rate", "SQL rate", "pct"),
    Column("won", "Won"),
    Column("win_rate", "Win rate", "pct"),
]
QUALITY_NOTE = (
    "Leads that arrived in the period, by first touch. Most junk first, then the lowest "
    "MQL rate: “Gate?” marks sources with ≥ 10 leads where a third or more are junk or "
    "the MQL rate is under half the average. Win rate = won / (won + lost)."
)


def _quality_chart(slug: str, title: str, label: str, rows: list[dict], total: dict) -> Chart:
    top = rows[:12]
    return Chart(
        slug=slug,
        title=title,
        subtitle="Share of each source's leads that were junk, became MQL, became SQL",
        kind="bar",
        value_format="pct",
        labels=[r["label"] for r in top],
        datasets=[
            {"label": "Junk rate", "data": [r["junk_rate"] for r in top], "color": "#ef4444"},
            {"label": "MQL rate", "data": [r["mql_rate"] for r in top], "color": "#4f46e5"},
            {"label": "SQL rate", "data": [r["sql_rate"] for r in top], "color": "#10b981"},
        ],
        table=ReportTable(
            slug=slug,
            title=title,
            columns=[Column("label", label, "text"), *QUALITY_COLUMNS],
            rows=rows,
            footer=total,
            note=QUALITY_NOTE,
        ),
    )


def sources_context(query: ReportQuery) -> dict:
    quality = source_quality(query)
    economics = campaign_economics(query)
    cost_columns = [
        Column("label", "Campaign", "text"),
        Column("channel", "Channel", "text"),
        Column("cost", "Cost", "money"),
        Column("leads", "Leads"),
        Column("won", "Customers"),
        Column("revenue", "Won revenue", "money"),
        Column("cpl", "CPL", "money"),
        Column("cpa", "CPA", "money"),
        Column("roi", "ROI", "pct"),
    ]
    campaigns = economics["campaigns"]
    cost_chart = Chart(
        slug="economics",
        title="Campaign economics",
        subtitle="Cost and won revenue per campaign (lifetime, campaigns that ran in the period)",
        kind="bar",
        value_format="money",
        labels=[r["label"] for r in campaigns[:12]],
        datasets=[
            {
                "label": "Cost",
                "data": [float(r["cost"]) for r in campaigns[:12]],
                "color": "#f59e0b",
            },
            {
                "label": "Won revenue",
                "data": [float(r["revenue"]) for r in campaigns[:12]],
                "color": "#10b981",
            },
        ],
        table=ReportTable(
            slug="economics",
            title="Campaign economics",
            columns=cost_columns,
            rows=campaigns,
            footer=economics["total"],
            note="CPL = cost / leads · CPA = cost / customers · ROI = (won revenue − cost) / cost;"
            " “—” where there is nothing to divide by.",
        ),
    )
    channel_table = ReportTable(
        slug="channels",
        title="Economics per channel",
        columns=[Column("label", "Channel", "text"), *cost_columns[2:]],
        rows=economics["channels"],
        footer=economics["total"],
    )
    return {
        "source_chart": _quality_chart(
            "sources", "Source quality", "Source", quality["sources"], quality["total"]
        ),
        "campaign_chart": _quality_chart(
            "campaign-quality",
            "Campaign quality",
            "Campaign",
            quality["campaigns"],
            quality["total"],
        ),
        "volume": volume_chart(query),
        "economics": cost_chart,
        "channels": channel_table,
        "to_gate": [r for r in quality["sources"] + quality["campaigns"] if r["flag"]],
    }


@org_view(Perm.VIEW_REPORTS)
def source_report(request):
    return render_report(
        request, template="reports/sources.html", build=sources_context, export_prefix="sources"
    )
