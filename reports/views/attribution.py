"""Attribution report: won revenue credited to campaigns, model switchable."""

from __future__ import annotations

from accounts.decorators import org_view
from accounts.permissions import Perm
from reports.charts import Chart, Kpi
from reports.export import Column, ReportTable
from reports.formatting import roi
from reports.period import ReportQuery
from reports.selectors.attribution import (
    DEFAULT_MODEL,
    MODELS,
    UNATTRIBUTED,
    Attribution,
    attribution_report,
)
from reports.views import render_report
from reports.views.digest import digest_context

CHART_LIMIT = 15  # campaigns drawn; the table lists them all


def _table(report: Attribution) -> ReportTable:
    model = report.model
    columns = [
        Column("campaign", "Campaign", "text"),
        Column("channel", "Channel", "text"),
        Column("deals", "Deals touched"),
        Column("touches", "Touches"),
        Column(model, f"{MODELS[model]} ({report.currency})", "money"),
        *[
            Column(k, f"{label} ({report.currency})", "money")
            for k, label in MODELS.items()
            if k != model
        ],
        Column("cost", "Cost", "money"),
        Column("roi", f"ROI ({MODELS[model]})", "pct"),
    ]
    rows = []
    for c in report.campaigns:
        row = {
            "campaign": c.name,
            "channel": c.channel_label,
            "deals": len(c.deals),
            "touches": c.touches,
            "cost": c.cost if c.campaign_id != UNATTRIBUTED else None,
            "roi": roi(c.revenue[model], c.cost) if c.campaign_id != UNATTRIBUTED else None,
            **{k: c.revenue[k] for k in MODELS},
        }
        if c.campaign_id == UNATTRIBUTED:
            row["flag"], row["flag_label"] = "Won deals without any campaign touch", "No touch"
        rows.append(row)
    footer = {
        "campaign": "Total",
        "deals": report.deals,
        **{k: float(report.revenue) for k in MODELS},
    }
    note = (
        "Touchpoints: the lead's activities with a campaign up to the deal's close. First touch: "
        "the earliest; lead creation: the first touch of the lead's first campaign; opportunity "
        "creation: the latest touch before the deal opened. U-shaped 40/40/20, W-shaped "
        "30/30/30/10; a touch holding two roles gets both shares, and a share nobody can take "
        "(no other touches) goes to the rest in proportion, so each deal adds up to its amount."
    )
    if report.other_currency_deals:
        note += (
            f" {report.other_currency_deals} won deal(s) in other currencies than "
            f"{report.currency} are left out."
        )
    return ReportTable(
        slug="attribution",
        title="Attributed revenue",
        columns=columns,
        rows=rows,
        footer=footer if rows else None,
        note=note,
    )


def _charts(report: Attribution, table: ReportTable) -> list[Chart]:
    top = report.campaigns[:CHART_LIMIT]
    labels = [c.name for c in top]
    chosen = Chart(
        slug="attributed-revenue",
        title=f"Won revenue by campaign — {MODELS[report.model]}",
        subtitle=f"{report.currency}, deals closed won in the period",
        kind="hbar",
        labels=labels,
        datasets=[
            {
                "label": MODELS[report.model],
                "data": [round(c.revenue[report.model], 2) for c in top],
            }
        ],
        table=table,
        value_format="money",
        height=max(180, 34 * len(top) + 60),
    )
    compare = Chart(
        slug="model-comparison",
        title="The same revenue under each model",
        subtitle="Where the models disagree, a campaign opens journeys or closes them",
        kind="bar",
        labels=labels,
        datasets=[
            {"label": label, "data": [round(c.revenue[k], 2) for c in top]}
            for k, label in MODELS.items()
        ],
        value_format="money",
    )
    return [chosen, compare]


def _credited(report: Attribution) -> int:
    return sum(1 for c in report.campaigns if c.campaign_id != UNATTRIBUTED)


@org_view(Perm.VIEW_REPORTS)
def attribution_view(request):
    model = (request.GET.get("model") or "").strip()
    notice = ""
    if model and model not in MODELS:
        notice = f"Unknown attribution model “{model[:30]}”: showing {MODELS[DEFAULT_MODEL]}."
    model = model if model in MODELS else DEFAULT_MODEL

    def build(query: ReportQuery) -> dict:
        report = attribution_report(
            organization_id=request.organization.pk, query=query, model=model
        )
        table = _table(report)
        before = (
            attribution_report(
                organization_id=request.organization.pk, query=query.previous, model=model
            )
            if query.has_previous
            else None
        )
        return {
            "report": report,
            "model": model,
            "models": MODELS.items(),
            "notice": notice,
            "kpis": [
                Kpi("Won deals", report.deals, previous=before and before.deals, icon="trophy"),
                Kpi(
                    f"Won revenue ({report.currency})",
                    report.revenue,
                    kind="money",
                    previous=before and before.revenue,
                    icon="cash-stack",
                ),
                Kpi(
                    "Campaigns credited",
                    _credited(report),
                    previous=before and _credited(before),
                    icon="megaphone",
                ),
            ],
            "charts": _charts(report, table),
            **digest_context(request),
        }

    return render_report(
        request, template="reports/attribution.html", build=build, export_prefix="attribution"
    )
