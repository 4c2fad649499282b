"""Dashboard rollups, the writes: materialized aggregates of the lead cohort that
the marketing dashboard reads instead of scanning every lead (the fast path;
reads in reports.selectors.rollups, the Celery jobs in reports.tasks).

Refresh (`rollup_refresh`, a Celery job per organization every few minutes, and a
full rebuild nightly): the cohort days of every lead changed since the last
refresh are recomputed from the facts — stage moves, merges, quality and owner
changes all bump `Lead.updated_at`, so those days are exactly the stale ones.
Rows of a day are deleted and re-inserted in one transaction.

The velocity rollups (reports.services.velocity_rollups) are refreshed in the same
transaction.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Exists, IntegerField, Max, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate, TruncMonth
from django.utils import timezone

from accounts.models import Organization
from leads.models import Lead, LeadStage, Quality
from pipeline.models import OpportunityStatus, StageTransition
from reports.models import LeadCohortRollup, MqlMonthRollup, RollupState
from reports.period import org_timezone
from reports.selectors.funnel import _rank_case
from reports.services.velocity_rollups import stale_days, velocity_rollup_refresh

SAFETY_MARGIN = dt.timedelta(minutes=10)
S = LeadStage


def _cohort_rows(organization_id: int, tz, days: list[dt.date] | None) -> list[LeadCohortRollup]:
    history = StageTransition.objects.filter(lead_id=OuterRef("pk"))
    top_rank = history.order_by().values("lead_id").annotate(r=Max(_rank_case())).values("r")
    leads = Lead.objects.filter(merged_into__isnull=True).annotate(
        d=TruncDate("created_at", tzinfo=tz)
    )
    if days is not None:
        leads = leads.filter(d__in=days)
    won_q = Q(stage=S.WON) | Q(opportunity__status=OpportunityStatus.WON)
    rows = (
        leads.annotate(
            r=Coalesce(Subquery(top_rank, output_field=IntegerField()), Value(0)),
            w=Exists(history.filter(to_stage=S.WON)),
            l=Exists(history.filter(to_stage=S.LOST)),
        )
        .order_by()
        .values("d", "first_source", "first_campaign_id", "quality", "r", "w", "l")
        .annotate(
            n=Count("pk"),
            customers=Count("pk", filter=won_q),
            revenue=Sum("opportunity__amount", filter=Q(opportunity__status=OpportunityStatus.WON)),
        )
    )
    merged: dict[tuple, LeadCohortRollup] = {}
    for row in rows:
        junk = row["quality"] == Quality.JUNK
        key = (row["d"], row["first_source"], row["first_campaign_id"], junk, row["r"],
               bool(row["w"]), bool(row["l"]))  # fmt: skip
        item = merged.get(key)
        if item is None:
            item = merged[key] = LeadCohortRollup(
                organization_id=organization_id, day=key[0], source=key[1] or "",
                campaign_id=key[2], junk=junk, rank=key[4], won=key[5], lost=key[6],
            )  # fmt: skip
        item.leads += row["n"]
        item.customers += row["customers"]
        item.revenue += row["revenue"] or Decimal(0)
    return list(merged.values())


def _mql_rows(organization_id: int, tz, months: list[dt.date] | None) -> list[MqlMonthRollup]:
    moves = StageTransition.objects.filter(to_stage=S.MQL, lead__merged_into__isnull=True).annotate(
        m=TruncMonth("occurred_at", tzinfo=tz)
    )
    if months is not None:
        moves = moves.filter(m__in=[_month_start(m, tz) for m in months])
    rows = (
        moves.order_by()
        .values("m", "lead__first_source", "lead__first_campaign_id")
        .annotate(n=Count("lead_id", distinct=True))
    )
    return [
        MqlMonthRollup(
            organization_id=organization_id,
            month=r["m"].astimezone(tz).date(),
            source=r["lead__first_source"] or "",
            campaign_id=r["lead__first_campaign_id"],
            leads=r["n"],
        )
        for r in rows
    ]


def _month_start(day: dt.date, tz) -> dt.datetime:
    return dt.datetime.combine(day.replace(day=1), dt.time.min, tzinfo=tz)


def rollup_refresh(*, organization_id: int, full: bool = False) -> dict[str, int]:
    """Bring the organization's rollups up to date (inside its scope).

    Incremental unless `full`, there is no state yet, or the org's timezone changed."""
    organization = Organization.objects.get(pk=organization_id)
    tz = org_timezone(organization)
    now = timezone.now()
    with transaction.atomic():
        state = RollupState.objects.select_for_update().filter().first()
        full = full or state is None or state.timezone != tz.key
        days = months = velocity_days = None
        if not full:
            assert state is not None  # else a full build
            since = state.refreshed_at - SAFETY_MARGIN
            changed = Lead.objects.filter(Q(updated_at__gte=since) | Q(created_at__gte=since))
            days = sorted(
                set(
                    changed.annotate(d=TruncDate("created_at", tzinfo=tz))
                    .order_by()
                    .values_list("d", flat=True)
                    .distinct()
                )
            )
            months = sorted(
                {
                    m.astimezone(tz).date()
                    for m in StageTransition.objects.filter(
                        to_stage=S.MQL, lead__in=changed.values("pk")
                    )
                    .annotate(m=TruncMonth("occurred_at", tzinfo=tz))
                    .order_by()
                    .values_list("m", flat=True)
                    .distinct()
                }
            )
            if state.velocity_at is not None:  # else never built: build it whole
                velocity_days = stale_days(tz, changed, since)
        cohort = LeadCohortRollup.objects.all()
        mql = MqlMonthRollup.objects.all()
        if not full:
            cohort, mql = cohort.filter(day__in=days), mql.filter(month__in=months)
        cohort.delete()
        mql.delete()
        new_cohort = _cohort_rows(organization_id, tz, days) if (full or days) else []
        new_mql = _mql_rows(organization_id, tz, months) if (full or months) else []
        LeadCohortRollup.objects.bulk_create(new_cohort, batch_size=2000)
        MqlMonthRollup.objects.bulk_create(new_mql, batch_size=2000)
        velocity = velocity_rollup_refresh(
            organization_id=organization_id, tz=tz, days=velocity_days
        )
        RollupState.objects.update_or_create(
            organization_id=organization_id,
            defaults={"refreshed_at": now, "timezone": tz.key, "velocity_at": now},
        )
    return {
        "days": -1 if days is None else len(days),
        "rows": len(new_cohort) + len(new_mql) + velocity,
    }
