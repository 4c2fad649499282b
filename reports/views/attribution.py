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
    attribution_reports,
)
from reports.views import render_report
from reports.views.digest import digest_context

CHART_LIMIT = 15  # campaigns drawn; the table lists them all


def _slug(report: Attribution, base: str) -> str:
    return base if report.is_default_currency else f"{base}-{report.currency.lower()}"


def _table(report: Attribution) -> ReportTable:
    model = report.model
    costs = report.is_default_currency  # campaign costs are in the default currency
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
        *(
            [Column("cost", "Cost", "money"), Column("roi", f"ROI ({MODELS[model]})", "pct")]
            if costs
            else []
        ),
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
            f" Amounts in {report.currency} only: {report.other_currency_deals} won deal(s) in "
            "other currencies are in their own tables."
        )
    if not costs:
        note += " Campaign costs are in the default currency: ROI is in that table."
    return ReportTable(
        slug=_slug(report, "attribution"),
        title=f"Attributed revenue ({report.currency})",
        columns=columns,
        rows=rows,
        footer=footer if rows else None,
        note=note,
    )


def _charts(report: Attribution) -> list[Chart]:
    table = _table(report)
    top = report.campaigns[:CHART_LIMIT]
    labels = [c.name for c in top]
    chosen = Chart(
        slug=_slug(report, "attributed-revenue"),
        title=f"Won revenue by campaign in {report.currency} — {MODELS[report.model]}",
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
        slug=_slug(report, "model-comparison"),
        title=f"The same revenue under each model ({report.currency})",
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


@org_view(Perm.VIEW_REPORTS)
def attribution_view(request):
    model = (request.GET.get("model") or "").strip()
    notice = ""
    if model and model not in MODELS:
        notice = f"Unknown attribution model “{model[:30]}”: showing {MODELS[DEFAULT_MODEL]}."
    model = model if model in MODELS else DEFAULT_MODEL

    def build(query: ReportQuery) -> dict:
        organization_id = request.organization.pk
        reports = attribution_reports(organization_id=organization_id, query=query, model=model)
        before = {
            r.currency: r
            for r in (
                attribution_reports(
                    organization_id=organization_id, query=query.previous, model=model
                )
                if query.has_previous
                else []
            )
        }
        deals = sum(r.deals for r in reports)
        kpis = [
            Kpi(
                "Won deals",
                deals,
                previous=(sum(r.deals for r in before.values()) if before else None),
                icon="trophy",
            ),
            # One revenue figure per currency: amounts in different currencies never add up.
            *[
                Kpi(
                    f"Won revenue ({r.currency})",
                    r.revenue,
                    kind="money",
                    previous=(before[r.currency].revenue if r.currency in before else None)
                    if before
                    else None,
                    icon="cash-stack",
                )
                for r in reports
                if r.deals or r.is_default_currency
            ],
            Kpi(
                "Campaigns credited",
                len({c.campaign_id for r in reports for c in r.campaigns} - {UNATTRIBUTED}),
                previous=len(
                    {c.campaign_id for r in before.values() for c in r.campaigns} - {UNATTRIBUTED}
                )
                if before
                else None,
                icon="megaphone",
            ),
        ]
        shown = [r for r in reports if r.deals or (r.is_default_currency and not deals)]
        charts = [chart for r in shown for chart in _charts(r)]
        return {
            "report": reports[0],
            "deals": deals,
            "currencies": [r.currency for r in reports if r.deals],
            "model": model,
            "models": MODELS.items(),
            "notice": notice,
            "kpis": kpis,
            "charts": charts,
            **digest_context(request),
        }

    return render_report(
        request, template="reports/attribution.html", build=build, export_prefix="attribution"
    )
