"""Reads for lead pages: lists, timelines, review queue, possible duplicates.

Every list is one query for the page plus a fixed number for counts and
filters, whatever the page size (pinned in tests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from accounts.models import Membership, Role
from leadflow.core.orgfacts import org_fact
from leadflow.core.pagination import COUNT_CAP, capped_count, first_page_query
from leadflow.core.prepared import STAND_IN_ID, PreparedQuery
from leads.models import (
    Activity,
    Campaign,
    CandidateStatus,
    Company,
    DuplicateCandidate,
    FormSubmission,
    Lead,
    LeadMerge,
    Quality,
)


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


# What a row of the lead list shows and the list sorts by (leads.rows.lead_row);
# its owner's and campaign's names come from list_labels, not from joins.
LIST_ROW_FIELDS = (
    "pk", "email", "external_id", "first_name", "last_name", "title",
    "company_id", "company__name", "company__domain", "company_name", "country",
    "first_source", "first_campaign_id", "owner_id", "score", "grade", "band",
    "mql_eligible", "scored_at", "quality", "created_at", "last_activity_at",
)  # fmt: skip
LABELS_FACT = "lead_list_labels"


@dataclass(frozen=True)
class ListLabels:
    """The names a lead list's rows show for ids: owners (every seat, left ones
    too) and campaigns."""

    owners: dict[int, str]
    campaigns: dict[int, str]

    def cover(self, leads) -> bool:
        return all(
            (lead.owner_id is None or lead.owner_id in self.owners)
            and (lead.first_campaign_id is None or lead.first_campaign_id in self.campaigns)
            for lead in leads
        )


def _load_labels(organization_id: int) -> ListLabels:
    seats = Membership.objects.filter(organization_id=organization_id).select_related("user")
    return ListLabels(
        owners={m.pk: m.user.display_name for m in seats.only("user__full_name", "user__email")},
        campaigns=dict(
            Campaign.objects.filter(organization_id=organization_id).values_list("pk", "name")
        ),
    )


def list_labels(*, organization_id: int, leads=()) -> ListLabels:
    """The labels, kept per organization (leads.controls forgets them when a seat,
    a person's name or a campaign changes); read afresh when `leads` name an id
    they lack (one created since they were kept)."""
    labels = org_fact(LABELS_FACT, organization_id, lambda: _load_labels(organization_id))
    return labels if labels.cover(leads) else _load_labels(organization_id)


def lead_list_rows(*, membership: Membership) -> QuerySet:
    """The lead list page's rows as named tuples of the columns it shows: no wide
    columns (custom attributes, consent, scoring detail) and no model instances,
    which cost the page more than its SQL."""
    return visible_leads(membership=membership).values_list(*LIST_ROW_FIELDS, named=True)


def newest_first(rows: QuerySet) -> QuerySet:
    """The lead list's order as it opens: newest first."""
    return rows.order_by("-created_at")


def lead_list_newest(*, membership: Membership) -> QuerySet:
    """The lead list as it opens: its rows, newest first."""
    return newest_first(lead_list_rows(membership=membership))


def _first_page(membership: Membership) -> QuerySet:
    return first_page_query(lead_list_newest(membership=membership), COUNT_CAP)


# The list's first page without filters, the page most opened, as a statement
# compiled once per process (leadflow.core.prepared): building and compiling it
# costs the ORM about what PostgreSQL takes to run it. One per visibility rule of
# visible_lead_q: a sales rep's own leads (the rep is the call's value), or all.
_OWN_FIRST_PAGE = PreparedQuery(
    _first_page, {"membership": Membership(pk=STAND_IN_ID, role=Role.SALES_REP)}
)
_ALL_FIRST_PAGE = PreparedQuery(lambda: _first_page(Membership(role=Role.ADMIN)), {})


def lead_list_first_rows(*, membership: Membership, limit: int) -> list:
    """The first `limit` rows of `first_page_query(lead_list_newest(...), COUNT_CAP)`
    (what keyset_page would read) for this member, from the compiled statement."""
    if membership.role == Role.SALES_REP:
        return _OWN_FIRST_PAGE.run(membership=membership, limit=limit)
    return _ALL_FIRST_PAGE.run(limit=limit)


def lead_detail(*, membership: Membership) -> QuerySet[Lead]:
    return (
        Lead.objects.filter(merged_into__isnull=True)
        .filter(Q(owner=membership) if membership.role == Role.SALES_REP else Q())
        .select_related("company", "owner__user", "first_campaign", "latest_campaign")
    )


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
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
        leads = first_touch.get(campaign.pk, 0)
        # Display-only attributes the campaign list reads; not model fields.
        campaign.first_touch_leads = leads  # type: ignore[attr-defined]
        campaign.cpl = campaign.cost / leads if leads else None  # type: ignore[attr-defined]
    return campaigns


def campaign_first_touch_counts() -> dict[int, int]:
    rows = (
        Lead.objects.filter(first_campaign__isnull=False, merged_into__isnull=True)
        .values("first_campaign")
        .annotate(n=Count("pk"))
    )
    return {r["first_campaign"]: r["n"] for r in rows}


DUPLICATES_PER_PAGE = 50


@dataclass(frozen=True)
class DuplicatePage:
    candidates: list[DuplicateCandidate]
    next_cursor: str  # "" on the last page


def duplicate_candidates(*, cursor: str = "", per_page: int = DUPLICATES_PER_PAGE) -> DuplicatePage:
    """Open candidate pairs of live leads, best first, from the stored table:
    one query per page (keyset on score and id, no count), whatever the tenant's
    size. `cursor` is the "score.id" of the last row of the previous page."""
    rows = (
        DuplicateCandidate.objects.filter(
            status=CandidateStatus.OPEN,
            lead_a__merged_into__isnull=True,
            lead_b__merged_into__isnull=True,
            lead_a__discarded_at__isnull=True,
            lead_b__discarded_at__isnull=True,
        )
        .select_related("lead_a__company", "lead_b__company")
        .order_by("-score", "-pk")
    )
    score, _, pk = cursor.partition(".")
    if score.isdigit() and pk.isdigit():
        rows = rows.filter(Q(score__lt=int(score)) | Q(score=int(score), pk__lt=int(pk)))
    page = list(rows[: per_page + 1])
    more = len(page) > per_page
    page = page[:per_page]
    return DuplicatePage(page, f"{page[-1].score}.{page[-1].pk}" if more else "")


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


def lead_merges(*, limit: int = 100) -> QuerySet[LeadMerge]:
    """The tenant's merges, newest first, with who merged and who undid."""
    return LeadMerge.objects.select_related("kept", "dropped", "merged_by", "undone_by").order_by(
        "-merged_at", "-pk"
    )[:limit]
