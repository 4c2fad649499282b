"""Lead volume: new leads per day/week/month by channel and campaign, totals vs
the previous period, and the lead velocity rate (MQLs month over month).

A lead's source and campaign are its first touch (`first_source`,
`first_campaign`): volume credits what brought the lead in.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Count, Q
from django.db.models.functions import Trunc, TruncMonth

from leads.models import Campaign, Channel, Lead, LeadStage
from pipeline.models import StageTransition
from reports.formatting import change
from reports.period import ReportQuery

NO_SOURCE = "(none)"


def _local_date(value, tz) -> dt.date:
    return value.astimezone(tz).date()


def volume_by_bucket(query: ReportQuery, *, by: str = "first_source") -> dict:
    """{"buckets": [date], "series": {key: [count per bucket]}, "total": int} (one query)."""
    buckets = query.buckets()
    index = {b: i for i, b in enumerate(buckets)}
    series: dict = defaultdict(lambda: [0] * len(buckets))
    rows = (
        Lead.objects.filter(query.created_q())
        .annotate(b=Trunc("created_at", query.grain, tzinfo=query.tz))
        .order_by()
        .values("b", by)
        .annotate(n=Count("pk"))
    )
    total = 0
    for row in rows:
        i = index.get(query.bucket_start(_local_date(row["b"], query.tz)))
        if i is None:  # cannot happen for a range inside the period; be safe
            continue
        series[row[by] or ""][i] += row["n"]
        total += row["n"]
    return {"buckets": buckets, "series": dict(series), "total": total}


def volume_totals(query: ReportQuery) -> tuple[int, int | None]:
    """New leads in the period and in the previous one (one query)."""
    prev = query.previous
    base = Lead.objects.filter(query.lead_q())
    if not query.has_previous:
        return base.filter(query.created_q()).count(), None
    agg = base.filter(created_at__gte=prev.start_at, created_at__lt=query.end_at).aggregate(
        now=Count("pk", filter=Q(created_at__gte=query.start_at)),
        before=Count("pk", filter=Q(created_at__lt=query.start_at)),
    )
    return agg["now"], agg["before"]


def volume_by_campaign(query: ReportQuery) -> list[dict]:
    """New leads per first campaign in the period, with the previous period (≤ two queries)."""
    prev = query.previous
    since = prev.start_at if query.has_previous else query.start_at
    rows = (
        Lead.objects.filter(query.lead_q(), created_at__gte=since, created_at__lt=query.end_at)
        .order_by()
        .values("first_campaign_id")
        .annotate(
            now=Count("pk", filter=Q(created_at__gte=query.start_at)),
            before=Count("pk", filter=Q(created_at__lt=query.start_at)),
        )
    )
    return campaign_rows(query, {r["first_campaign_id"]: r for r in rows})


def campaign_rows(query: ReportQuery, counts: dict) -> list[dict]:
    """Rows of the campaign table from {campaign id: {now, before}} (≤ one query)."""
    ids = [pk for pk in counts if pk]
    campaigns = (
        {
            pk: (name, channel)
            for pk, name, channel in Campaign.objects.filter(pk__in=ids).values_list(
                "pk", "name", "channel"
            )
        }
        if ids
        else {}
    )
    out = []
    for pk, r in counts.items():
        if not r["now"] and not r["before"]:
            continue
        out.append(
            {
                "campaign_id": pk,
                "campaign": campaigns[pk][0] if pk in campaigns else "No campaign",
                "channel": Channel(campaigns[pk][1]).label if pk in campaigns else "",
                "leads": r["now"],
                "previous": r["before"] if query.has_previous else None,
                "change": change(r["now"], r["before"]) if query.has_previous else None,
            }
        )
    out.sort(key=lambda r: (-r["leads"], r["campaign"].lower()))
    return out


def _month_add(day: dt.date, months: int) -> dt.date:
    m = day.month - 1 + months
    return dt.date(day.year + m // 12, m % 12 + 1, 1)


def mql_months(query: ReportQuery, *, months: int = 12) -> list[dict]:
    """MQLs per calendar month up to the period's end, and the lead velocity rate.

    Whole calendar months, up to the one the period ends in. A month's MQLs are
    the distinct leads moved into MQL that month (a lead re-qualified in a later
    month counts again there: renewed interest).
    LVR = (MQLs this month − MQLs last month) / MQLs last month; None without a base.
    One query.
    """
    last = query.end.replace(day=1)
    first = _month_add(last, -(months - 1))
    since = _month_add(first, -1)  # one more month: the first shown month's base
    start_at = dt.datetime.combine(since, dt.time.min, tzinfo=query.tz)
    end_at = dt.datetime.combine(_month_add(last, 1), dt.time.min, tzinfo=query.tz)
    rows = (
        StageTransition.objects.filter(
            query.lead_q("lead__"),
            to_stage=LeadStage.MQL,
            occurred_at__gte=start_at,
            occurred_at__lt=end_at,
        )
        .annotate(m=TruncMonth("occurred_at", tzinfo=query.tz))
        .order_by()
        .values("m")
        .annotate(n=Count("lead_id", distinct=True))
    )
    per_month = {_local_date(r["m"], query.tz).replace(day=1): r["n"] for r in rows}
    return lvr_rows(query, per_month, months)


def lvr_rows(query: ReportQuery, per_month: dict, months: int) -> list[dict]:
    """The last `months` months up to the period's end with MQLs and LVR."""
    first = _month_add(query.end.replace(day=1), -(months - 1))
    out = []
    for i in range(months):
        month = _month_add(first, i)
        n, base = per_month.get(month, 0), per_month.get(_month_add(month, -1), 0)
        out.append({"month": month, "mqls": n, "previous": base, "lvr": change(n, base)})
    return out
