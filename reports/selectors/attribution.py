"""Attribution of won revenue to campaigns, from the activity history.

Definitions (shown on the page):
- A deal counts when its opportunity was closed won in the period; its revenue is
  the opportunity amount in the deal's currency. Every currency gets its own
  report (the organization's default currency first): amounts are never mixed
  and no deal is left out.
- Touchpoints: the lead's activities that carry a campaign, up to the deal's
  close, in time order.
- First touch: the earliest touchpoint. Lead creation: the earliest touchpoint of
  the lead's first campaign (the touch that created the lead); when no activity
  carries it, a touch of the first campaign at the lead's creation. No first
  campaign: no creation touch. Opportunity creation: the latest touchpoint at or
  before the opportunity was opened.
- Models: first touch 100 %; last touch 100 %; linear, equal shares; U-shaped
  40 % first touch, 40 % lead creation, 20 % spread over the others; W-shaped
  30/30/30 % first touch, lead creation, opportunity creation, 10 % over the others.
  When one touch holds two roles it gets both shares; a share with nobody to take
  it (no "other" touches, no creation touch) is spread over the rest in
  proportion, so every deal's credit adds up to its amount. One touch: 100 % in
  every model; two touches under U-shaped: 50/50.
- A won deal without any campaign touch is "Unattributed".

Three queries whatever the number of deals and currencies: the deals, their
touchpoints, the campaigns.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import F

from leads.models import Activity, Campaign, Channel
from pipeline.models import Opportunity, OpportunityStatus
from pipeline.policy import policy_get
from reports.period import ReportQuery

MODELS: dict[str, str] = {
    "first_touch": "First touch",
    "last_touch": "Last touch",
    "linear": "Linear",
    "u_shaped": "U-shaped (40/40/20)",
    "w_shaped": "W-shaped (30/30/30/10)",
}
DEFAULT_MODEL = "w_shaped"
UNATTRIBUTED = 0  # campaign key of revenue without any campaign touch


@dataclass(frozen=True)
class Touch:
    campaign_id: int
    at: dt.datetime


def weights(
    touches: list[Touch], model: str, creation: int | None, opportunity: int | None
) -> list[float]:
    """Each touch's share of the deal (summing to 1) under `model`.

    `creation` / `opportunity` are indexes into `touches` (None: no such touch)."""
    n = len(touches)
    if n == 0:
        return []
    w = [0.0] * n
    if model == "first_touch":
        w[0] = 1.0
    elif model == "last_touch":
        w[-1] = 1.0
    elif model == "linear":
        w = [1.0 / n] * n
    else:
        if model == "u_shaped":
            roles, rest = [(0, 0.4), (creation, 0.4)], 0.2
        elif model == "w_shaped":
            roles, rest = [(0, 0.3), (creation, 0.3), (opportunity, 0.3)], 0.1
        else:
            raise ValueError(f"Unknown attribution model {model!r}")
        held = {i for i, _ in roles if i is not None}
        for i, share in roles:
            if i is not None:
                w[i] += share
        others = [i for i in range(n) if i not in held]
        for i in others:
            w[i] += rest / len(others)
    total = sum(w)
    return [x / total for x in w]


@dataclass
class Deal:
    opportunity_id: int
    lead_id: int
    amount: Decimal
    closed_at: dt.datetime
    opened_at: dt.datetime
    lead_created_at: dt.datetime
    first_campaign_id: int | None
    touches: list[Touch] = field(default_factory=list)

    def journey(self) -> tuple[list[Touch], int | None, int | None]:
        """The touchpoints with the index of the lead-creation and opportunity touches."""
        touches = [t for t in self.touches if t.at <= self.closed_at]
        creation = None
        if self.first_campaign_id is not None:
            creation = next(
                (i for i, t in enumerate(touches) if t.campaign_id == self.first_campaign_id),
                None,
            )
            if creation is None:
                touches.append(Touch(self.first_campaign_id, self.lead_created_at))
                touches.sort(key=lambda t: t.at)
                creation = next(
                    i for i, t in enumerate(touches) if t.campaign_id == self.first_campaign_id
                )
        opportunity = None
        for i, t in enumerate(touches):
            if t.at <= self.opened_at:
                opportunity = i
        return touches, creation, opportunity


@dataclass
class CampaignCredit:
    campaign_id: int
    name: str
    channel: str
    cost: Decimal
    revenue: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    deals: set[int] = field(default_factory=set)
    touches: int = 0

    @property
    def channel_label(self) -> str:
        return Channel(self.channel).label if self.channel in Channel.values else ""


@dataclass
class Attribution:
    currency: str
    deals: int
    revenue: Decimal
    other_currency_deals: int  # won deals in the period in the other currencies' reports
    campaigns: list[CampaignCredit]  # best first under the chosen model
    model: str
    is_default_currency: bool = True  # campaign costs (and so ROI) are in this currency


def _deals(query: ReportQuery) -> dict[str, list[Deal]]:
    rows = (
        Opportunity.objects.filter(
            query.lead_q("lead__"),
            status=OpportunityStatus.WON,
            closed_at__gte=query.start_at,
            closed_at__lt=query.end_at,
        )
        .order_by("closed_at", "pk")
        .values(
            "pk",
            "lead_id",
            "amount",
            "currency",
            "closed_at",
            "created_at",
            "lead__created_at",
            "lead__first_campaign_id",
        )
    )
    deals: dict[str, list[Deal]] = defaultdict(list)
    for r in rows:
        closed_at = r["closed_at"]
        assert closed_at is not None  # the filter's closed_at range excludes NULL
        deals[(r["currency"] or "").upper()].append(
            Deal(
                r["pk"],
                r["lead_id"],
                r["amount"],
                closed_at,
                r["created_at"],
                r["lead__created_at"],
                r["lead__first_campaign_id"],
            )
        )
    return deals


def attribution_report(*, organization_id: int, query: ReportQuery, model: str) -> Attribution:
    """The report in the organization's default currency (see attribution_reports)."""
    return attribution_reports(organization_id=organization_id, query=query, model=model)[0]


def attribution_reports(
    *, organization_id: int, query: ReportQuery, model: str
) -> list[Attribution]:
    """Won revenue in the period credited to campaigns under every model, one
    report per currency: the default currency's first (even without deals),
    then every other currency a deal was won in, by code (3–4 queries)."""
    if model not in MODELS:
        raise ValueError(model)
    default = policy_get(organization_id=organization_id).default_currency.upper()
    by_currency = _deals(query)
    all_deals = [d for deals in by_currency.values() for d in deals]
    by_lead = {d.lead_id: d for d in all_deals}
    touches = (
        Activity.objects.filter(
            lead_id__in=list(by_lead),
            campaign__isnull=False,
            occurred_at__lte=F("lead__opportunity__closed_at"),
        )
        .order_by("lead_id", "occurred_at", "pk")
        .values_list("lead_id", "campaign_id", "occurred_at")
    )
    if by_lead:
        for lead_id, campaign_id, at in touches:
            by_lead[lead_id].touches.append(Touch(campaign_id, at))
    campaign_ids = {t.campaign_id for d in all_deals for t in d.touches} | {
        d.first_campaign_id for d in all_deals if d.first_campaign_id
    }
    campaigns = list(
        Campaign.objects.filter(pk__in=campaign_ids).values("pk", "name", "channel", "cost")
    )
    currencies = [default, *sorted(c for c in by_currency if c != default)]
    total = len(all_deals)
    return [
        _credit(
            currency,
            by_currency.get(currency, []),
            campaigns,
            model,
            other_deals=total - len(by_currency.get(currency, [])),
            is_default=currency == default,
        )
        for currency in currencies
    ]


def _credit(
    currency: str,
    deals: list[Deal],
    campaigns: Sequence[Mapping[str, Any]],
    model: str,
    *,
    other_deals: int,
    is_default: bool,
) -> Attribution:
    credits: dict[int, CampaignCredit] = {
        c["pk"]: CampaignCredit(c["pk"], c["name"], c["channel"], c["cost"]) for c in campaigns
    }
    credits[UNATTRIBUTED] = CampaignCredit(UNATTRIBUTED, "Unattributed", "", Decimal(0))
    for deal in deals:
        journey, creation, opportunity = deal.journey()
        if not journey:
            target = credits[UNATTRIBUTED]
            target.deals.add(deal.opportunity_id)
            for key in MODELS:
                target.revenue[key] += float(deal.amount)
            continue
        for t in journey:
            credits[t.campaign_id].touches += 1
            credits[t.campaign_id].deals.add(deal.opportunity_id)
        for key in MODELS:
            for t, share in zip(journey, weights(journey, key, creation, opportunity), strict=True):
                credits[t.campaign_id].revenue[key] += float(deal.amount) * share
    rows = [c for c in credits.values() if c.deals]
    rows.sort(key=lambda c: (c.campaign_id == UNATTRIBUTED, -c.revenue[model], c.name))
    return Attribution(
        currency=currency,
        deals=len(deals),
        revenue=sum((d.amount for d in deals), Decimal(0)),
        other_currency_deals=other_deals,
        campaigns=rows,
        model=model,
        is_default_currency=is_default,
    )
