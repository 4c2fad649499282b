"""Campaign economics: CPL, CPA and ROI per campaign and per channel.

Campaign cost is a lifetime figure, so these are lifetime numbers of the
campaigns that ran during the period (their dates overlap it; undated campaigns
always count): leads = leads the campaign brought in (first touch), customers =
those leads won, revenue = their won opportunities' amounts.
CPL = cost / leads, CPA = cost / customers, ROI = (revenue − cost) / cost;
each is "—" when its denominator is zero.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum

from leads.models import Campaign, Channel, Lead, LeadStage
from pipeline.models import OpportunityStatus
from reports.formatting import ratio, roi
from reports.period import ReportQuery


def _row(label: str, cost, leads: int, won: int, revenue) -> dict:
    return {
        "label": label,
        "cost": cost,
        "leads": leads,
        "won": won,
        "revenue": revenue,
        "cpl": ratio(cost, leads),
        "cpa": ratio(cost, won),
        "roi": roi(revenue, cost),
    }


def running_campaigns(query: ReportQuery) -> list[Mapping[str, Any]]:
    """Campaigns whose dates overlap the period (undated ones always), by name (one query)."""
    campaigns = Campaign.objects.filter(
        Q(starts_on__isnull=True) | Q(starts_on__lte=query.end),
        Q(ends_on__isnull=True) | Q(ends_on__gte=query.start),
    )
    if query.campaign_id:
        campaigns = campaigns.filter(pk=query.campaign_id)
    return list(campaigns.order_by("name", "pk").values("pk", "name", "channel", "cost"))


def campaign_economics(query: ReportQuery) -> dict:
    """{"campaigns": [row], "channels": [row], "total": row} (two queries)."""
    campaigns = running_campaigns(query)
    ids = [c["pk"] for c in campaigns]
    won_q = Q(stage=LeadStage.WON) | Q(opportunity__status=OpportunityStatus.WON)
    stats = (
        {
            r["first_campaign_id"]: r
            for r in Lead.objects.filter(query.lead_q(), first_campaign_id__in=ids)
            .order_by()
            .values("first_campaign_id")
            .annotate(
                leads=Count("pk"),
                won=Count("pk", filter=won_q),
                revenue=Sum(
                    "opportunity__amount", filter=Q(opportunity__status=OpportunityStatus.WON)
                ),
            )
        }
        if ids
        else {}
    )
    return economics_rows(campaigns, stats)


def economics_rows(campaigns: Sequence[Mapping[str, Any]], stats: dict) -> dict:
    """Campaign, channel and total rows from {campaign id: {leads, won, revenue}}."""
    rows = []
    # channel -> [cost, leads, won, revenue]: _row's arguments after the name
    by_channel: defaultdict[str, list[Any]] = defaultdict(lambda: [Decimal(0), 0, 0, Decimal(0)])
    for c in campaigns:
        s = stats.get(c["pk"], {})
        leads, won = s.get("leads") or 0, s.get("won") or 0
        revenue = s.get("revenue") or Decimal(0)
        row = _row(c["name"], c["cost"], leads, won, revenue)
        row["campaign_id"], row["channel"] = c["pk"], Channel(c["channel"]).label
        rows.append(row)
        acc = by_channel[row["channel"]]
        acc[0] += c["cost"]
        acc[1] += leads
        acc[2] += won
        acc[3] += revenue
    channels = [_row(name, *acc) for name, acc in sorted(by_channel.items())]
    total = _row(
        "All campaigns",
        sum((r["cost"] for r in rows), Decimal(0)),
        sum(r["leads"] for r in rows),
        sum(r["won"] for r in rows),
        sum((r["revenue"] for r in rows), Decimal(0)),
    )
    return {"campaigns": rows, "channels": channels, "total": total}
