"""Lead list, export, bulk actions, detail, edit, the review queue and merge."""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import org_view
from accounts.models import Membership
from accounts.permissions import Perm
from accounts.selectors import active_members
from leadflow.core.errors import LeadflowError
from leadflow.core.orgfacts import org_facts_prefetched
from leadflow.core.pagination import COUNT_CAP, request_page
from leadflow.core.redirects import redirect_next
from leadflow.core.tenancy import (
    enqueue_on_commit,
    get_tenant_object_or_404,
    scoped_lazy,
    tenant_scope,
)
from leads import exports, selectors
from leads.attributes import custom_attribute_labels, labelled_custom
from leads.bulk import bulk_actions_for
from leads.controls import PAGING_PARAMS, controls_keys, kept_fragments
from leads.filters import UNASSIGNED, BulkActionForm, LeadFilter
from leads.forms import LeadForm, MergeForm
from leads.forms_export import LeadExportForm
from leads.models import DuplicateCandidate, ExportJob, ExportStatus, Lead, LeadMerge
from leads.panels import panels_for
from leads.services import duplicates
from leads.services import exports as export_services
from leads.services import leads as lead_services
from leads.tasks.duplicates import rebuild_duplicates

PAGE_SIZES = (25, 50, 100)
# "Showing 1–50 of 1,000+": counted no further (the first page's compiled
# statement, leads.selectors.lead_list_first_rows, counts to this cap).
LEAD_COUNT_CAP = COUNT_CAP


def _page_size(request) -> int:
    try:
        size = int(request.GET.get("per_page", 50))
    except ValueError:
        return 50
    return size if size in PAGE_SIZES else 50


def _members(request) -> list[Membership]:
    return list(active_members(organization=request.organization))


def _filtered(request, data=None, members=None, queryset=None):
    if queryset is None:
        queryset = selectors.lead_list(membership=request.membership)
    return LeadFilter(
        request.GET if data is None else data,
        queryset=queryset.order_by("-created_at"),
        members=_members(request) if members is None else members,
    )


def _filters_given(request) -> bool:
    return any(key not in PAGING_PARAMS for key in request.GET)


@org_view(Perm.VIEW_LEADS)
def lead_list(request):
    membership = request.membership
    rows = selectors.lead_list_rows(membership=membership)
    # Built only when used: to filter, or to render controls the cache does not hold.
    organization = request.organization
    members = scoped_lazy(organization, lambda: _members(request))
    lead_filter = scoped_lazy(
        organization, lambda: _filtered(request, members=members, queryset=rows)
    )
    if _filters_given(request):
        queryset, first_rows = lead_filter.qs, None
    else:  # the list as it opens: its first page from a statement compiled once
        queryset = selectors.newest_first(rows)  # = lead_list_newest, built once

        def first_rows(limit: int) -> list:
            return selectors.lead_list_first_rows(membership=membership, limit=limit)

    # Keyset pages and a capped count: no COUNT or OFFSET over the whole tenant.
    page = request_page(
        request,
        queryset,
        per_page=_page_size(request),
        cap=LEAD_COUNT_CAP,
        first_rows=first_rows,
    )
    can_edit = membership.has_perm(Perm.EDIT_LEADS)
    bulk = bulk_actions_for(membership)
    context = {
        "filter": lead_filter,
        "page": page,
        "query": page.base_query,
        "sort": request.GET.get("o", ""),
        "page_sizes": PAGE_SIZES,
        "bulk_form": scoped_lazy(organization, lambda: BulkActionForm(organization=organization)),
        "bulk_actions": bulk,
        "members": members,
        "can_edit": can_edit,
        "can_export": membership.has_perm(Perm.EXPORT_LEADS),
    }
    with org_facts_prefetched(organization.pk):  # the labels and the controls' version: one read
        context["row_labels"] = selectors.list_labels(
            organization_id=organization.pk, leads=page.object_list
        )
        keys = controls_keys(request, can_edit=can_edit, bulk_keys=[a.key for a in bulk])
    context.update(keys, kept_fragments=kept_fragments(keys.values()))
    template = "leads/lead_list.html#results" if request.htmx else "leads/lead_list.html"
    return render(request, template, context)


def _csv_response(lines) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="leads-{stamp}.csv"'
    return response


def _in_scope(organization, lines):
    # The response streams after the middleware's scope closed: reopen it.
    with tenant_scope(organization):
        yield from lines


def _export(request, query: str, columns: list[str]):
    """Stream a small export; queue a large one and show its progress."""
    membership = request.membership
    try:
        if export_services.is_large(membership=membership, query=query):
            job = export_services.export_job_create(
                membership=membership, query=query, keys=columns
            )
            messages.info(request, "A large export: it is written in the background.")
            return redirect(
                "leads:lead_export_job", org_slug=request.organization.slug, export_id=job.pk
            )
        lines = export_services.export_stream(membership=membership, query=query, keys=columns)
    except LeadflowError as exc:
        messages.error(request, str(exc))
        return redirect(reverse("leads:lead_export_page", args=[request.organization.slug]))
    return _csv_response(_in_scope(request.organization, lines))


@org_view(Perm.EXPORT_LEADS)
def lead_export(request):
    """GET export.csv?<filters>[&columns=...]: the default columns unless named."""
    query = request.GET.copy()
    columns = query.pop("columns", None) or exports.DEFAULT_COLUMNS
    return _export(request, query.urlencode(), columns)


@org_view(Perm.EXPORT_LEADS)
def lead_export_page(request):
    """Choose the columns of an export of the filtered lead list."""
    labels = custom_attribute_labels()
    if request.method == "POST":
        form = LeadExportForm(request.POST, custom_labels=labels)
        if form.is_valid():
            return _export(request, form.cleaned_data["query"], form.cleaned_data["columns"])
    else:
        form = LeadExportForm(custom_labels=labels, initial={"query": request.GET.urlencode()})
    context = {
        "form": form,
        "query": form["query"].value() or "",
        "jobs": export_services.recent_export_jobs(membership=request.membership),
    }
    return render(request, "leads/lead_export.html", context, status=400 if form.errors else 200)


def _export_job(request, export_id: int) -> ExportJob:
    return get_tenant_object_or_404(ExportJob.objects.all(), pk=export_id)


@require_GET
@org_view(Perm.EXPORT_LEADS)
def lead_export_job(request, export_id: int):
    job = _export_job(request, export_id)
    template = "leads/lead_export_job.html"
    return render(request, template + ("#progress" if request.htmx else ""), {"job": job})


@require_GET
@org_view(Perm.EXPORT_LEADS)
def lead_export_download(request, export_id: int):
    job = _export_job(request, export_id)
    if job.status != ExportStatus.DONE or not job.file:
        messages.info(request, "This export is not ready yet.")
        return redirect(
            "leads:lead_export_job", org_slug=request.organization.slug, export_id=job.pk
        )
    try:
        handle = job.file.open("rb")
    except FileNotFoundError:
        messages.error(request, "The export file is missing; export again.")
        return redirect(
            "leads:lead_export_job", org_slug=request.organization.slug, export_id=job.pk
        )
    name = f"leads-{job.created_at:%Y%m%d-%H%M}.csv"
    return FileResponse(handle, as_attachment=True, filename=name, content_type="text/csv")


@require_POST
@org_view(Perm.EDIT_LEADS)
def lead_bulk(request):
    form = BulkActionForm(request.POST, organization=request.organization)
    back = reverse("leads:lead_list", kwargs={"org_slug": request.organization.slug})
    back += "?" + request.POST.get("query", "")
    if not form.is_valid():
        errors = "; ".join(e for errs in form.errors.values() for e in errs)
        messages.error(request, errors)
        return redirect(back)
    data = form.cleaned_data
    extra = {a.key: a for a in bulk_actions_for(request.membership)}
    if data["select_all"]:
        leads = _filtered(request, data=QueryDict(request.POST.get("query", ""))).qs
    else:
        leads = selectors.visible_leads(membership=request.membership).filter(
            pk__in=data["lead_ids"]
        )
    if data["select_all"] and data["action"] == "mark_junk" and not request.POST.get("confirmed"):
        # Every matching lead, not only the page: say how many and ask first.
        context = {"count": leads.count(), "post": request.POST, "back": back}
        return render(request, "leads/lead_bulk_confirm.html", context)
    try:
        if data["action"] == "assign_owner":
            owner = None if data["owner"] == UNASSIGNED else data["owner"]
            n = lead_services.leads_assign_owner(leads=leads, owner=owner)
            messages.success(request, f"{n} leads assigned.")
        elif data["action"] in extra:
            messages.success(request, extra[data["action"]].run(request, leads))
        elif data["action"] == "add_to_campaign":
            n = lead_services.leads_add_to_campaign(
                leads=leads, campaign=data["campaign"], actor=request.membership
            )
            messages.success(request, f"{n} leads added to {data['campaign']}.")
        elif data["action"] == "mark_junk":
            n = lead_services.leads_mark_junk(leads=leads, actor=request.membership)
            messages.success(request, f"{n} leads marked as junk; they are in Needs review.")
        else:
            messages.error(request, "Your role can't do that.")
    except LeadflowError as exc:
        messages.error(request, str(exc))
    return redirect(back)


@org_view(Perm.VIEW_LEADS)
def lead_detail(request, lead_id: int):
    lead = get_tenant_object_or_404(
        selectors.lead_detail(membership=request.membership), pk=lead_id
    )
    context = {
        "lead": lead,
        "timeline": selectors.lead_timeline(lead=lead),
        # By the label its capture form gives it, not its key.
        "custom_attributes": labelled_custom(lead.custom, custom_attribute_labels())
        if lead.custom
        else [],
        "panels": panels_for(request, lead),
        "merges": lead.merges_kept.filter(undone_at__isnull=True).select_related(
            "dropped", "merged_by"
        ),
        "can_edit": request.membership.has_perm(Perm.EDIT_LEADS),
        "can_review": request.membership.has_perm(Perm.REVIEW_LEADS),
        "can_email": request.membership.has_perm(Perm.WORK_LEADS),
    }
    return render(request, "leads/lead_detail.html", context)


@org_view(Perm.EDIT_LEADS)
def lead_edit(request, lead_id: int):
    lead = get_tenant_object_or_404(
        selectors.lead_detail(membership=request.membership), pk=lead_id
    )
    form = LeadForm(request.POST or None, instance=lead)
    if request.method == "POST" and form.is_valid():
        try:
            lead_services.lead_update(lead=lead, data=form.cleaned_data, actor=request.membership)
        except LeadflowError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Lead saved.")
            return redirect(
                "leads:lead_detail", org_slug=request.organization.slug, lead_id=lead.pk
            )
    status = 400 if form.errors else 200
    return render(request, "leads/lead_form.html", {"form": form, "lead": lead}, status=status)


@org_view(Perm.REVIEW_LEADS)
def review_list(request):
    page = request_page(request, selectors.review_queue(), per_page=50)
    return render(
        request,
        "leads/review_list.html",
        {"page": page, "counts": selectors.lead_count_by_quality()},
    )


def _review_action(request, lead_id: int, action, message: str):
    lead = get_tenant_object_or_404(Lead.objects.filter(merged_into__isnull=True), pk=lead_id)
    action(lead=lead, actor=request.membership)
    messages.success(request, message.format(lead=lead))
    return redirect_next(
        request, reverse("leads:review_list", kwargs={"org_slug": request.organization.slug})
    )


@require_POST
@org_view(Perm.REVIEW_LEADS)
def lead_approve(request, lead_id: int):
    return _review_action(request, lead_id, lead_services.lead_approve, "{lead} approved.")


@require_POST
@org_view(Perm.REVIEW_LEADS)
def lead_discard(request, lead_id: int):
    return _review_action(
        request, lead_id, lead_services.lead_discard, "{lead} discarded (its history is kept)."
    )


@org_view(Perm.REVIEW_LEADS)
def duplicate_list(request):
    page = selectors.duplicate_candidates(cursor=request.GET.get("after", ""))
    return render(request, "leads/duplicate_list.html", {"page": page})


@require_POST
@org_view(Perm.REVIEW_LEADS)
def duplicate_dismiss(request, candidate_id: int):
    candidate = get_tenant_object_or_404(DuplicateCandidate, pk=candidate_id)
    duplicates.duplicate_dismiss(candidate=candidate, actor=request.membership)
    messages.success(request, "Marked as not a duplicate; this pair won't be proposed again.")
    return redirect_next(
        request, reverse("leads:duplicate_list", kwargs={"org_slug": request.organization.slug})
    )


@require_POST
@org_view(Perm.REVIEW_LEADS)
def duplicates_rebuild(request):
    enqueue_on_commit(rebuild_duplicates, organization_id=request.organization.pk)
    messages.success(request, "Looking for duplicates among all leads; the list fills as it goes.")
    return redirect("leads:duplicate_list", org_slug=request.organization.slug)


@org_view(Perm.REVIEW_LEADS)
def lead_merge(request, lead_id: int, other_lead_id: int):
    """Pick the surviving record and each field, review what will happen, merge."""
    live = Lead.objects.filter(merged_into__isnull=True, discarded_at__isnull=True)
    live = live.select_related("company", "owner__user")
    a = get_tenant_object_or_404(live, pk=lead_id)
    b = get_tenant_object_or_404(live, pk=other_lead_id)
    if a.pk == b.pk:
        messages.error(request, "Pick two different leads.")
        return redirect("leads:duplicate_list", org_slug=request.organization.slug)
    form = MergeForm(request.POST or None, a=a, b=b)
    if request.method == "POST" and form.is_valid():
        keep, drop, chosen = form.plan()
        if request.POST.get("confirm") != "1":
            context = {
                "form": form,
                "a": a,
                "b": b,
                "keep": keep,
                "drop": drop,
                "plan": lead_services.merge_plan(keep=keep, drop=drop, chosen=chosen),
            }
            return render(request, "leads/lead_merge_confirm.html", context)
        # Named as they were, so the message tells the two apart.
        labels = lead_services.lead_label(drop), lead_services.lead_label(keep)
        try:
            lead_services.lead_merge(keep=keep, drop=drop, chosen=chosen, actor=request.membership)
        except LeadflowError as exc:
            messages.error(request, str(exc))
        else:
            email = Lead.objects.values_list("email", flat=True).get(pk=keep.pk)
            now_uses = f" (its email is now {email})" if email != keep.email else ""
            messages.success(
                request,
                f"Merged {labels[0]} into {labels[1]}{now_uses}."
                " All history moved; you can undo this from Merges.",
            )
            return redirect(
                "leads:lead_detail", org_slug=request.organization.slug, lead_id=keep.pk
            )
    return render(request, "leads/lead_merge.html", {"form": form, "a": a, "b": b})


@org_view(Perm.REVIEW_LEADS)
def merge_list(request):
    merges = [
        (merge, lead_services.merge_undo_deadline(merge)) for merge in selectors.lead_merges()
    ]
    return render(request, "leads/merge_list.html", {"merges": merges, "now": timezone.now()})


@require_POST
@org_view(Perm.REVIEW_LEADS)
def lead_merge_undo(request, merge_id: int):
    merge = get_tenant_object_or_404(
        LeadMerge.objects.select_related("kept", "dropped"), pk=merge_id
    )
    try:
        lead_services.lead_merge_undo(merge=merge, actor=request.membership)
    except LeadflowError as exc:
        messages.error(request, str(exc))
    else:
        merge.dropped.refresh_from_db()
        messages.success(
            request,
            f"Merge undone: {lead_services.lead_label(merge.dropped)} is its own lead again.",
        )
    return redirect("leads:merge_list", org_slug=request.organization.slug)
