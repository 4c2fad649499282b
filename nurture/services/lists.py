"""Nurture lists: static (added by hand, import or action) and dynamic (a saved
lead filter, re-evaluated in SQL).

Rules enforced here:

- membership writes are set-based: one ``INSERT … SELECT … ON CONFLICT`` adds
  (or revives) members, one UPDATE marks the ones that left; a removed member
  keeps its row (removed_at), so growth can be charted and a lead that comes
  back is revived rather than duplicated;
- ``member_count`` is recomputed in the same transaction by one UPDATE;
- leads that join a list are enrolled in the active sequences whose entry
  trigger is "joins this list" (consent still applies);
- only leads of the active organization can ever join (the lead queryset is scoped).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Membership
from leadflow.core.orgfacts import org_fact
from leads.filters import LeadFilter
from leads.models import Activity, ActivityKind, Lead, LeadStage
from nurture.models import ListKind, ListMembership, MembershipSource, NurtureList
from nurture.services.common import ListInvalid, owner_org_id

COMMUNITY_NAME = "Community"
# Keys of a saved filter: LeadFilter's query parameters plus nurture's own.
LEAD_FILTER_KEYS = frozenset(
    {"q", "source", "campaign", "country", "quality", "grade", "band", "min_score", "mql", "owner"}
    | {"created_min", "created_max"}
)
EXTRA_FILTER_KEYS = frozenset({"stage", "activity_kind", "activity_days"})
FILTER_KEYS = LEAD_FILTER_KEYS | EXTRA_FILTER_KEYS
MAX_ACTIVITY_DAYS = 3650


def _lead_filter(data: Mapping[str, Any], organization_id: int) -> LeadFilter:
    members = Membership.objects.filter(organization_id=organization_id).select_related("user")
    plain = {k: v for k, v in data.items() if k in LEAD_FILTER_KEYS and v not in (None, "")}
    as_strings = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in plain.items()}
    return LeadFilter(data=as_strings, queryset=Lead.objects.all(), members=members)


def clean_filter(data: Mapping[str, Any] | None, *, organization_id: int) -> dict[str, Any]:
    """Validate a saved filter; returns it without empty values or raises ListInvalid."""
    data = {k: v for k, v in dict(data or {}).items() if v not in (None, "", [])}
    unknown = sorted(set(data) - FILTER_KEYS)
    if unknown:
        raise ListInvalid(f"Unknown filter keys: {', '.join(unknown)}.")
    lead_filter = _lead_filter(data, organization_id)
    if not lead_filter.is_valid():
        problems = "; ".join(
            f"{name}: {' '.join(errors)}" for name, errors in lead_filter.errors.items()
        )
        raise ListInvalid(f"The filter is not valid ({problems}).")
    stages = data.get("stage")
    if stages is not None:
        stages = [stages] if isinstance(stages, str) else list(stages)
        bad = [s for s in stages if s not in LeadStage.values]
        if bad:
            raise ListInvalid(f"Unknown stage {bad[0]!r}.")
        data["stage"] = stages
    kind = data.get("activity_kind")
    if kind is not None and kind not in ActivityKind.values:
        raise ListInvalid(f"Unknown activity kind {kind!r}.")
    if "activity_days" in data:
        if kind is None:
            raise ListInvalid("activity_days needs an activity_kind.")
        try:
            days = int(data["activity_days"])
        except (TypeError, ValueError):
            raise ListInvalid("activity_days must be a whole number of days.") from None
        if not 1 <= days <= MAX_ACTIVITY_DAYS:
            raise ListInvalid(f"activity_days must be between 1 and {MAX_ACTIVITY_DAYS}.")
        data["activity_days"] = days
    return data


def filter_leads(saved: Mapping[str, Any], *, organization_id: int, now=None) -> QuerySet[Lead]:
    """The active leads a saved filter matches (a queryset: evaluated in SQL)."""
    now = now or timezone.now()
    qs = _lead_filter(saved, organization_id).qs
    qs = qs.filter(discarded_at__isnull=True, merged_into__isnull=True)
    if saved.get("stage"):
        qs = qs.filter(stage__in=saved["stage"])
    if saved.get("activity_kind"):
        recent = Activity.objects.filter(lead_id=OuterRef("pk"), kind=saved["activity_kind"])
        if saved.get("activity_days"):
            recent = recent.filter(occurred_at__gte=now - timedelta(days=saved["activity_days"]))
        qs = qs.filter(Exists(recent))
    return qs.order_by()


# --- writes ----------------------------------------------------------------------


def _insert_members(
    nurture_list: NurtureList, leads: QuerySet[Lead], source: str, now
) -> list[int]:
    """Add (or revive) every lead of the queryset in one statement; returns the
    ids of the leads that joined (were not current members)."""
    ids = leads.annotate(member_lead_id=F("pk")).values("member_lead_id")
    select_sql, params = ids.query.get_compiler(using="default").as_sql()
    table = ListMembership._meta.db_table
    # "WHERE true" keeps SQLite's parser from reading ON CONFLICT as a join clause.
    sql = (
        f"INSERT INTO {table} (organization_id, list_id, lead_id, added_at, source, removed_at)"
        f" SELECT %s, %s, l.member_lead_id, %s, %s, NULL FROM ({select_sql}) l WHERE true"
        " ON CONFLICT (list_id, lead_id) DO UPDATE SET removed_at = NULL,"
        " added_at = excluded.added_at, source = excluded.source"
        f" WHERE {table}.removed_at IS NOT NULL RETURNING lead_id"
    )
    with connection.cursor() as cursor:
        stamp = connection.ops.adapt_datetimefield_value(now)
        cursor.execute(
            sql, [nurture_list.organization_id, nurture_list.pk, stamp, str(source), *params]
        )
        return [row[0] for row in cursor.fetchall()]


def _recount(nurture_list: NurtureList) -> None:
    live = (
        ListMembership.objects.filter(list_id=OuterRef("pk"), removed_at__isnull=True)
        .order_by()
        .values("list_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    NurtureList.objects.filter(pk=nurture_list.pk).update(member_count=Coalesce(Subquery(live), 0))
    nurture_list.refresh_from_db(fields=["member_count"])


def _joined(nurture_list: NurtureList, lead_ids: list[int]) -> None:
    if lead_ids:
        from nurture.services.enrollments import enroll_for_trigger

        enroll_for_trigger(
            organization_id=nurture_list.organization_id,
            trigger={"type": "joins_list", "list_id": nurture_list.pk},
            lead_ids=lead_ids,
        )


def list_save(
    *,
    nurture_list: NurtureList | None = None,
    data: Mapping[str, Any],
    actor: Membership | None = None,
    organization_id: int | None = None,
) -> NurtureList:
    """Create or update a list (data: name, description, kind, filter). A dynamic
    list's filter is validated and the list re-evaluated at once; a list's kind
    cannot change once it has members."""
    org_id = owner_org_id(nurture_list, actor, organization_id)
    name = (data.get("name") or "").strip()
    kind = data.get("kind") or ListKind.STATIC
    description = (data.get("description") or "").strip()
    if not name:
        raise ListInvalid("A list needs a name.")
    if kind not in ListKind.values:
        raise ListInvalid(f"Unknown list kind {kind!r}.")
    saved = {}
    if kind == ListKind.DYNAMIC:
        saved = clean_filter(data.get("filter"), organization_id=org_id)
        if not saved:
            raise ListInvalid("A dynamic list needs at least one filter condition.")
    with transaction.atomic():
        clash = NurtureList.objects.filter(name__iexact=name)
        if nurture_list is not None:
            clash = clash.exclude(pk=nurture_list.pk)
            if nurture_list.kind != kind and nurture_list.member_count:
                raise ListInvalid("A list with members cannot change between static and dynamic.")
        if clash.exists():
            raise ListInvalid(f"There is already a list named {name!r}.")
        if nurture_list is None:
            nurture_list = NurtureList(organization_id=org_id)
        nurture_list.name, nurture_list.kind = name, kind
        nurture_list.filter, nurture_list.description = saved, description or ""
        nurture_list.save()
        if kind == ListKind.DYNAMIC:
            list_refresh(nurture_list=nurture_list)
    return nurture_list


def list_add_leads(
    *, nurture_list: NurtureList, lead_ids: Iterable[int], source: str = MembershipSource.MANUAL
) -> int:
    """Add leads of this organization to a static list; returns how many joined."""
    if nurture_list.is_dynamic:
        raise ListInvalid("Members of a dynamic list come from its filter.")
    if source not in MembershipSource.values:
        raise ListInvalid(f"Unknown membership source {source!r}.")
    ids = sorted({int(i) for i in lead_ids})
    if not ids:
        return 0
    with transaction.atomic():
        leads = Lead.objects.filter(pk__in=ids, discarded_at__isnull=True, merged_into__isnull=True)
        joined = _insert_members(nurture_list, leads, source, timezone.now())
        _recount(nurture_list)
        _joined(nurture_list, joined)
    return len(joined)


def list_remove_leads(*, nurture_list: NurtureList, lead_ids: Iterable[int]) -> int:
    """Remove leads from a static list (the rows stay, marked removed)."""
    if nurture_list.is_dynamic:
        raise ListInvalid("Members of a dynamic list come from its filter.")
    with transaction.atomic():
        removed = ListMembership.objects.filter(
            list=nurture_list, lead_id__in=list(lead_ids), removed_at__isnull=True
        ).update(removed_at=timezone.now())
        _recount(nurture_list)
    return removed


def list_refresh(*, nurture_list: NurtureList, lead_ids: Iterable[int] | None = None) -> int:
    """Re-evaluate a dynamic list's filter in SQL: insert the leads that now match,
    mark removed the members that no longer do. lead_ids limits both to the
    leads that changed. Returns how many joined."""
    if not nurture_list.is_dynamic:
        return 0
    now = timezone.now()
    with transaction.atomic():
        matching = filter_leads(
            nurture_list.filter, organization_id=nurture_list.organization_id, now=now
        )
        members = ListMembership.objects.filter(list=nurture_list, removed_at__isnull=True)
        if lead_ids is not None:
            ids = sorted(set(lead_ids))
            if not ids:
                return 0
            matching = matching.filter(pk__in=ids)
            members = members.filter(lead_id__in=ids)
        joined = _insert_members(nurture_list, matching, MembershipSource.FILTER, now)
        members.exclude(lead_id__in=matching.values("pk")).update(removed_at=now)
        _recount(nurture_list)
        if lead_ids is None:
            NurtureList.objects.filter(pk=nurture_list.pk).update(refreshed_at=now)
        _joined(nurture_list, joined)
    return len(joined)


def _has_dynamic_lists() -> bool:
    return NurtureList.objects.filter(kind=ListKind.DYNAMIC).exists()


def refresh_dynamic_lists(*, organization_id: int, lead_ids: list[int] | None = None) -> None:
    """Hook target: re-evaluate every dynamic list of the organization for the
    leads that changed (or entirely, from the periodic task). Whether the
    organization has any dynamic list is cached (the single-lead path asks)."""
    if lead_ids is not None and not org_fact("dynamic_lists", organization_id, _has_dynamic_lists):
        return
    for nurture_list in NurtureList.objects.filter(kind=ListKind.DYNAMIC):
        list_refresh(nurture_list=nurture_list, lead_ids=lead_ids)


def community_list(*, organization_id: int) -> NurtureList:
    """The organization's default "community" list (recycled leads go there)."""
    found = NurtureList.objects.filter(is_default_community=True).first()
    if found:
        return found
    name = COMMUNITY_NAME
    if NurtureList.objects.filter(name__iexact=name).exists():
        name = f"{COMMUNITY_NAME} (recycled leads)"
    with transaction.atomic():
        found, _ = NurtureList.objects.get_or_create(
            is_default_community=True,
            defaults={
                "organization_id": organization_id,
                "name": name,
                "description": "Recycled leads, nurtured until they are ready again.",
            },
        )
    return found
