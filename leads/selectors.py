"""Reads for lead pages: lists, timelines, review queue, possible duplicates.

Every list is one query for the page plus a fixed number for counts and
filters, whatever the page size (pinned in tests)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Lower
from rapidfuzz import fuzz

from accounts.models import Membership, Role
from leadflow.core.pagination import COUNT_CAP, capped_count
from leads.models import Activity, Campaign, Company, FormSubmission, Lead, Quality


def visible_lead_q(*, membership: Membership, prefix: str = "") -> Q:
    """The one visibility rule, as a condition on `prefix`-related leads: live leads;
    a sales rep only the leads they own. Lists and counts both use it."""
    condition = Q(**{f"{prefix}discarded_at__isnull": True, f"{prefix}merged_into__isnull": True})
    if membership.role == Role.SALES_REP:
        condition &= Q(**{f"{prefix}owner": membership})
    return condition


def visible_leads(*, membership: Membership) -> QuerySet[Lead]:
    """Leads this member may see: sales reps see the leads they own."""
    return Lead.objects.filter(visible_lead_q(membership=membership))


def lead_list(*, membership: Membership) -> QuerySet[Lead]:
    return visible_leads(membership=membership).select_related(
        "company", "owner__user", "first_campaign", "latest_campaign"
    )


def lead_detail(*, membership: Membership) -> QuerySet[Lead]:
    return (
        Lead.objects.filter(merged_into__isnull=True)
        .filter(Q(owner=membership) if membership.role == Role.SALES_REP else Q())
        .select_related("company", "owner__user", "first_campaign", "latest_campaign")
    )


@dataclass(frozen=True)
class TimelineEntry:
    at: object
    kind: str
    label: str
    activity: Activity | None = None
    submission: FormSubmission | None = None


def lead_timeline(*, lead: Lead, limit: int = 200) -> list[TimelineEntry]:
    """Activities and raw submissions, newest first (two queries)."""
    activities = (
        Activity.objects.filter(lead=lead)
        .select_related("campaign")
        .order_by("-occurred_at")[:limit]
    )
    submissions = (
        FormSubmission.objects.filter(lead=lead)
        .select_related("form")
        .order_by("-received_at")[:limit]
    )
    entries = [
        TimelineEntry(a.occurred_at, "activity", a.get_kind_display(), activity=a)
        for a in activities
    ] + [
        TimelineEntry(s.received_at, "submission", "Raw submission", submission=s)
        for s in submissions
    ]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


def review_queue() -> QuerySet[Lead]:
    """Junk and suspect leads nobody has approved or discarded yet."""
    return (
        Lead.objects.filter(
            quality__in=[Quality.JUNK, Quality.SUSPECT],
            reviewed_at__isnull=True,
            discarded_at__isnull=True,
            merged_into__isnull=True,
        )
        .select_related("company", "first_campaign")
        .order_by("-created_at")
    )


def company_list(*, membership: Membership) -> QuerySet[Company]:
    """Companies with the number of their leads this member may see. The count is
    a correlated subquery, so only the companies of the page shown are counted
    (an aggregate over the join would count every lead of the tenant)."""
    leads = (
        Lead.objects.filter(visible_lead_q(membership=membership), company=OuterRef("pk"))
        .order_by()
        .values("company")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Company.objects.annotate(lead_count=Coalesce(Subquery(leads), 0)).order_by("name", "pk")


def campaign_list() -> QuerySet[Campaign]:
    # Lead counts come from campaign_first_touch_counts (one GROUP BY), not a join here.
    return Campaign.objects.order_by("-created_at")


def campaign_list_with_cost_per_lead() -> list[Campaign]:
    """The campaigns, newest first, each with `first_touch_leads` (live leads it
    brought in first) and `cpl` (cost per such lead; None without any)."""
    campaigns = list(campaign_list())
    first_touch = campaign_first_touch_counts()
    for campaign in campaigns:
        campaign.first_touch_leads = first_touch.get(campaign.pk, 0)
        campaign.cpl = (
            campaign.cost / campaign.first_touch_leads if campaign.first_touch_leads else None
        )
    return campaigns


def campaign_first_touch_counts() -> dict[int, int]:
    rows = (
        Lead.objects.filter(first_campaign__isnull=False, merged_into__isnull=True)
        .values("first_campaign")
        .annotate(n=Count("pk"))
    )
    return {r["first_campaign"]: r["n"] for r in rows}


@dataclass(frozen=True)
class DuplicatePair:
    a: Lead
    b: Lead
    reason: str


DUPLICATE_SCAN_LIMIT = 500  # pairs shown per page of the review list


def possible_duplicates(*, limit: int = DUPLICATE_SCAN_LIMIT) -> list[DuplicatePair]:
    """Pairs of live leads that look like one person: same phone, same name at the
    same company, or a close name match (rapidfuzz >= 90) at the same company.
    SQL narrows the leads to those candidate groups (one query); only within the
    small groups are names compared in Python."""
    live = Lead.objects.filter(merged_into__isnull=True, discarded_at__isnull=True)
    dup_phones = live.exclude(phone="").values("phone").annotate(n=Count("pk")).filter(n__gt=1)
    busy_companies = (
        live.exclude(company=None)
        .values("company_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1, n__lt=50)  # huge accounts are buying committees, not duplicates
    )
    same_name_elsewhere = (
        live.exclude(last_name="")
        .annotate(fn=Lower("first_name"), ln=Lower("last_name"), cn=Lower("company_name"))
        .filter(
            fn=Lower(OuterRef("first_name")),
            ln=Lower(OuterRef("last_name")),
            cn=Lower(OuterRef("company_name")),
        )
        .exclude(pk=OuterRef("pk"))
    )
    leads = list(
        live.filter(
            Q(phone__in=dup_phones.values("phone"))
            | Q(company_id__in=busy_companies.values("company_id"))
            | Exists(same_name_elsewhere)
        )
        .select_related("company")
        .order_by("pk")[: limit * 4]
    )
    pairs: list[DuplicatePair] = []
    seen: set[tuple[int, int]] = set()

    def add(a: Lead, b: Lead, reason: str) -> None:
        a, b = (a, b) if a.pk < b.pk else (b, a)
        if (a.pk, b.pk) not in seen:
            seen.add((a.pk, b.pk))
            pairs.append(DuplicatePair(a, b, reason))

    by_phone: dict[str, list[Lead]] = {}
    by_company: dict[object, list[Lead]] = {}
    for lead in leads:
        if lead.phone:
            by_phone.setdefault(lead.phone, []).append(lead)
        company_key = lead.company_id or lead.company_name.strip().lower()
        if company_key:
            by_company.setdefault(company_key, []).append(lead)
    for phone, group in by_phone.items():
        for a, b in combinations(group, 2):
            add(a, b, f"Same phone {phone}")
    for group in by_company.values():
        for a, b in combinations(group, 2):
            name_a, name_b = a.full_name.lower(), b.full_name.lower()
            if not name_a or not name_b:
                continue
            if name_a == name_b:
                add(a, b, "Same name at the same company")
            elif fuzz.token_sort_ratio(name_a, name_b) >= 90:
                add(a, b, "Similar name at the same company")
    return pairs[:limit]


def lead_count_by_quality(*, cap: int = COUNT_CAP) -> dict[str, str]:
    """Live leads per quality as shown ("1,000+" past the cap): one capped count
    each over the (organization, quality, …) index, never a GROUP BY over the
    tenant (the "ok" leads are nearly all of it)."""
    live = Lead.objects.filter(merged_into__isnull=True, discarded_at__isnull=True)
    counts = {}
    for quality in Quality.values:
        n = capped_count(live.filter(quality=quality), cap)
        counts[quality] = f"{cap:,}+" if n > cap else f"{n:,}"
    return counts
