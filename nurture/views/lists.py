"""Nurture lists: the index with growth sparklines, create/edit (static or a saved
filter), members, adding by email or search, removing, refreshing a dynamic
list, and the lead list's "Add to list" bulk action."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import render
from django.template.defaultfilters import pluralize
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.errors import LeadflowError
from leadflow.core.pagination import request_page
from leadflow.core.tenancy import get_tenant_object_or_404
from nurture import selectors
from nurture.forms import AddLeadsForm, BulkAddToListForm, LeadIdsForm, NurtureListForm
from nurture.models import ListKind, MembershipSource, NurtureList
from nurture.services import lists as list_services
from nurture.views.common import PER_PAGE, form_errors, settings_page, to


def _list(list_id: int) -> NurtureList:
    return get_tenant_object_or_404(NurtureList, pk=list_id)


def _growth_labels() -> list[str]:
    return [f"{d:%b} {d.day}" for d in selectors.week_starts()]  # each week's Monday


@require_GET
@org_view(Perm.MANAGE_NURTURE)
def list_list(request):
    lists = list(selectors.lists_for_index())
    growth = selectors.list_growth(list_ids=[lst.pk for lst in lists])
    labels = _growth_labels()
    for lst in lists:
        lst.growth = {"labels": labels, "data": growth[lst.pk]}
        lst.growth_id = f"growth-{lst.pk}"
        lst.added_recently = sum(growth[lst.pk])
    context = {
        "tab": "lists",
        "lists": lists,
        "total_members": sum(lst.member_count for lst in lists),
        "added_recently": sum(lst.added_recently for lst in lists),
        "weeks": len(labels),
        "recent_note": f"joined in the last {len(labels)} weeks",
    }
    return render(request, "nurture/list_list.html", context)


def _list_form_page(request, nurture_list: NurtureList | None):
    form = NurtureListForm(
        request.POST or None, organization=request.organization, nurture_list=nurture_list
    )
    context = {"tab": "lists", "nurture_list": nurture_list}
    return settings_page(
        request, form, service=list_services.list_save, instance={"nurture_list": nurture_list},
        noun="List", then="list_detail", template="nurture/list_form.html", context=context,
    )  # fmt: skip


@org_view(Perm.MANAGE_NURTURE)
def list_create(request):
    return _list_form_page(request, None)


@org_view(Perm.MANAGE_NURTURE)
def list_edit(request, list_id: int):
    return _list_form_page(request, _list(list_id))


@require_GET
@org_view(Perm.MANAGE_NURTURE)
def list_detail(request, list_id: int):
    nurture_list = _list(list_id)
    labels = _growth_labels()
    growth = selectors.list_growth(list_ids=[nurture_list.pk])[nurture_list.pk]
    context = {
        "tab": "lists",
        "nurture_list": nurture_list,
        "page": request_page(
            request, selectors.list_members(nurture_list=nurture_list), per_page=PER_PAGE
        ),
        "add_form": AddLeadsForm(),
        "growth": {"labels": labels, "series": [{"label": "Added", "data": growth}]},
        "sequences": selectors.sequences_using_list(nurture_list=nurture_list),
        "filter_summary": _filter_summary(request, nurture_list),
        "can_edit_members": nurture_list.kind == ListKind.STATIC,
    }
    return render(request, "nurture/list_detail.html", context)


def _filter_summary(request, nurture_list: NurtureList) -> list[tuple[str, str]]:
    """The saved conditions as (label, text), choices shown by their labels."""
    if not nurture_list.filter:
        return []
    form = NurtureListForm(organization=request.organization, nurture_list=nurture_list)
    summary = []
    for name, value in nurture_list.filter.items():
        field = form.fields.get(name)
        if field is None:
            continue
        if name == "campaign":
            labels = {str(c.pk): c.name for c in field.queryset}
        else:
            labels = {str(k): v for k, v in getattr(field, "choices", []) if k != ""}
        values = value if isinstance(value, list) else [value]
        shown = ", ".join(
            "Yes" if v is True else "No" if v is False else str(labels.get(str(v), v))
            for v in values
        )
        summary.append((field.label or name.replace("_", " ").capitalize(), shown))
    return summary


@require_GET
@org_view(Perm.MANAGE_NURTURE)
def list_lead_search(request, list_id: int):
    """htmx: leads matching the search box that are not on the list yet."""
    nurture_list = _list(list_id)
    q = request.GET.get("q", "").strip()[:200]
    leads = selectors.lead_search(nurture_list=nurture_list, q=q)
    context = {"nurture_list": nurture_list, "leads": leads, "q": q}
    return render(request, "nurture/partials/lead_search_results.html", context)


@require_POST
@org_view(Perm.MANAGE_NURTURE)
def list_add(request, list_id: int):
    nurture_list = _list(list_id)
    form = AddLeadsForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_errors(form))
        return to(request, "list_detail", list_id=nurture_list.pk)
    emails = form.cleaned_data["emails"]
    found = selectors.leads_by_email(emails=emails)
    lead_ids = set(found.values())
    picked = form.cleaned_data["lead_ids"]
    if picked:
        lead_ids |= set(selectors.live_leads().filter(pk__in=picked).values_list("pk", flat=True))
    missing = [e for e in emails if e not in found]
    try:
        added = list_services.list_add_leads(
            nurture_list=nurture_list, lead_ids=sorted(lead_ids), source=MembershipSource.MANUAL
        )
    except LeadflowError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{added} lead{pluralize(added)} added to {nurture_list}.")
        if missing:
            shown = ", ".join(missing[:5]) + ("…" if len(missing) > 5 else "")
            messages.warning(
                request,
                f"{len(missing)} address{pluralize(len(missing), 'es')} matched no lead: {shown}",
            )
    return to(request, "list_detail", list_id=nurture_list.pk)


@require_POST
@org_view(Perm.MANAGE_NURTURE)
def list_remove(request, list_id: int):
    nurture_list = _list(list_id)
    form = LeadIdsForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_errors(form))
        return to(request, "list_detail", list_id=nurture_list.pk)
    try:
        removed = list_services.list_remove_leads(
            nurture_list=nurture_list, lead_ids=form.cleaned_data["lead_ids"]
        )
    except LeadflowError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{removed} lead{pluralize(removed)} removed.")
    return to(request, "list_detail", list_id=nurture_list.pk)


@require_POST
@org_view(Perm.MANAGE_NURTURE)
def list_refresh(request, list_id: int):
    nurture_list = _list(list_id)
    try:
        list_services.list_refresh(nurture_list=nurture_list)
    except LeadflowError as exc:
        messages.error(request, str(exc))
    else:
        nurture_list.refresh_from_db(fields=["member_count"])
        messages.success(
            request, f"{nurture_list} re-evaluated: {nurture_list.member_count:,} members."
        )
    return to(request, "list_detail", list_id=nurture_list.pk)


@require_POST
@org_view(Perm.MANAGE_NURTURE)
def list_bulk_add(request):
    """Target of the lead list's "Add to list" bulk action (lead_ids + nurture_list)."""
    form = BulkAddToListForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_errors(form))
        return to(request, "list_list")
    nurture_list = form.cleaned_data["nurture_list"]
    lead_ids = list(
        selectors.live_leads()
        .filter(pk__in=form.cleaned_data["lead_ids"])
        .values_list("pk", flat=True)
    )
    try:
        added = list_services.list_add_leads(
            nurture_list=nurture_list, lead_ids=lead_ids, source=MembershipSource.ACTION
        )
    except LeadflowError as exc:
        messages.error(request, str(exc))
        return to(request, "list_list")
    messages.success(request, f"{added} lead{pluralize(added)} added to {nurture_list}.")
    return to(request, "list_detail", list_id=nurture_list.pk)
