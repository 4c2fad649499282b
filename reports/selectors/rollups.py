"""Dashboard rollups, the reads (the fast path): org-wide queries (optionally by
source or campaign) in the timezone the rollups were built in are answered from
the rollups that reports.services.rollups keeps; rep- or team-scoped queries and
orgs never refreshed use the live selectors. `tests/reports/test_dashboard_queries.py`
checks both paths give the same numbers.
"""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Q, Sum
from django.db.models.functions import Coalesce

from reports.models import LeadCohortRollup, MqlMonthRollup, RollupState
from reports.period import ReportQuery
from reports.selectors.funnel import FunnelCounts


def rollup_state(query: ReportQuery) -> RollupState | None:
    """The rollups' state when they can answer this query, else None (one query)."""
    if query.owner_ids is not None or query.rep_id or query.team_id:
        return None
    state = RollupState.objects.first()
    if state is None or state.timezone != query.tz.key:
        return None
    return state


def _filtered(qs, query: ReportQuery):
    if query.source:
        qs = qs.filter(source=query.source)
    if query.campaign_id:
        qs = qs.filter(campaign_id=query.campaign_id)
    return qs


def volume_by_bucket(query: ReportQuery, *, by: str = "first_source") -> dict:
    assert by == "first_source"
    buckets = query.buckets()
    index = {b: i for i, b in enumerate(buckets)}
    series: dict = defaultdict(lambda: [0] * len(buckets))
    rows = (
        _filtered(LeadCohortRollup.objects.filter(day__gte=query.start, day__lte=query.end), query)
        .order_by()
        .values("day", "source")
        .annotate(n=Sum("leads"))
    )
    total = 0
    for row in rows:
        series[row["source"]][index[query.bucket_start(row["day"])]] += row["n"]
        total += row["n"]
    return {"buckets": buckets, "series": dict(series), "total": total}


def volume_totals(query: ReportQuery) -> tuple[int, int | None]:
    prev = query.previous
    since = prev.start if query.has_previous else query.start
    agg = _filtered(
        LeadCohortRollup.objects.filter(day__gte=since, day__lte=query.end), query
    ).aggregate(
        now=Coalesce(Sum("leads", filter=Q(day__gte=query.start)), 0),
        before=Coalesce(Sum("leads", filter=Q(day__lt=query.start)), 0),
    )
    return agg["now"], (agg["before"] if query.has_previous else None)


def volume_by_campaign(query: ReportQuery) -> list[dict]:
    from reports.selectors.volume import campaign_rows

    since = query.previous.start if query.has_previous else query.start
    rows = (
        _filtered(LeadCohortRollup.objects.filter(day__gte=since, day__lte=query.end), query)
        .order_by()
        .values("campaign_id")
        .annotate(
            now=Coalesce(Sum("leads", filter=Q(day__gte=query.start)), 0),
            before=Coalesce(Sum("leads", filter=Q(day__lt=query.start)), 0),
        )
    )
    return campaign_rows(query, {r["campaign_id"]: r for r in rows})


def funnel_total(query: ReportQuery) -> FunnelCounts:
    counts = FunnelCounts()
    rows = (
        _filtered(LeadCohortRollup.objects.filter(day__gte=query.start, day__lte=query.end), query)
        .order_by()
        .values("rank", "won", "lost", "junk")
        .annotate(n=Sum("leads"))
    )
    for r in rows:
        counts.add(n=r["n"], rank=r["rank"], won=r["won"], lost=r["lost"], junk=r["junk"])
    return counts


def cohort_funnel_by_bucket(query: ReportQuery) -> dict:
    """FunnelCounts per arrival bucket (the funnel page's cohorts), like
    `reports.selectors.funnel.cohort_funnel(query, group="bucket")`."""
    out: dict = defaultdict(FunnelCounts)
    rows = (
        _filtered(LeadCohortRollup.objects.filter(day__gte=query.start, day__lte=query.end), query)
        .order_by()
        .values("day", "rank", "won", "lost", "junk")
        .annotate(n=Sum("leads"))
    )
    for r in rows:
        out[query.bucket_start(r["day"])].add(
            n=r["n"], rank=r["rank"], won=r["won"], lost=r["lost"], junk=r["junk"]
        )
    return out


def mql_months(query: ReportQuery, *, months: int = 12) -> list[dict]:
    from reports.selectors.volume import _month_add, lvr_rows

    last = query.end.replace(day=1)
    since = _month_add(last, -months)
    rows = (
        _filtered(MqlMonthRollup.objects.filter(month__gte=since, month__lte=last), query)
        .order_by()
        .values("month")
        .annotate(n=Sum("leads"))
    )
    return lvr_rows(query, {r["month"]: r["n"] for r in rows}, months)


def campaign_economics(query: ReportQuery) -> dict:
    from reports.selectors.cost import economics_rows, running_campaigns

    campaigns = running_campaigns(query)
    ids = [c["pk"] for c in campaigns]
    stats = (
        {
            r["campaign_id"]: r
            for r in _filtered(LeadCohortRollup.objects.filter(campaign_id__in=ids), query)
            .order_by()
            .values("campaign_id")
            .annotate(leads=Sum("leads"), won=Sum("customers"), revenue=Sum("revenue"))
        }
        if ids
        else {}
    )
    return economics_rows(campaigns, stats)
