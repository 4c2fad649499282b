"""The opportunity board and one deal's page (edit, close, reopen)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from accounts.decorators import org_view
from accounts.models import Role
from accounts.permissions import Perm
from leadflow.core.errors import LeadflowError
from leadflow.core.tenancy import get_tenant_object_or_404
from pipeline import selectors, services
from pipeline.forms import CloseForm, OpportunityForm, ReasonForm
from pipeline.models import Opportunity, OpportunityStatus
from pipeline.views.queue import close_deal


@require_GET
@org_view(Perm.VIEW_PIPELINE)
def board(request):
    context = {
        "columns": selectors.pipeline_board(membership=request.membership),
        "can_work": request.membership.has_perm(Perm.WORK_LEADS),
        "limit": selectors.BOARD_COLUMN_LIMIT,
    }
    return render(request, "pipeline/board.html", context)


def _opportunity(request, opportunity_id: int) -> Opportunity:
    qs = Opportunity.objects.select_related("lead", "owner__user")
    if request.membership.role == Role.SALES_REP:
        qs = qs.filter(owner=request.membership)  # another rep's deal is a 404
    return get_tenant_object_or_404(qs, pk=opportunity_id)


def _update(request, opportunity, form) -> str:
    fields = form.deal_fields()
    if not fields["name"]:
        del fields["name"]  # an empty name keeps the deal's current one
    services.opportunity_update(opportunity=opportunity, actor=request.membership, **fields)
    return "Opportunity saved."


def _reopen(request, opportunity, form) -> str:
    services.lead_reopen(
        lead=opportunity.lead, actor=request.membership, reason=form.cleaned_data["reason"]
    )
    return "Reopened — the deal is open again."


@org_view(Perm.WORK_LEADS)
def opportunity_edit(request, opportunity_id: int):
    """Edit an open deal, close it as won or lost, or reopen a lost one (`do` says which)."""
    opportunity = _opportunity(request, opportunity_id)
    is_open = opportunity.status == OpportunityStatus.OPEN
    initial = {
        "name": opportunity.name,
        "amount": opportunity.amount,
        "currency": opportunity.currency,
        "expected_close_date": opportunity.expected_close_date,
        "probability": opportunity.probability,
        "next_step": opportunity.next_step,
    }
    do = request.POST.get("do", "") if request.method == "POST" else ""
    forms = {
        "update": OpportunityForm(
            request.POST if do == "update" else None, initial=initial, prefix="deal"
        ),
        "close": CloseForm(request.POST if do == "close" else None, prefix="close"),
        "reopen": ReasonForm(request.POST if do == "reopen" else None, prefix="reopen"),
    }
    runs = {"update": _update, "close": close_deal, "reopen": _reopen}
    error = ""
    if request.method == "POST":
        form = forms.get(do)
        if form is None:
            error = "Choose what to do: save, close or reopen the deal."
        elif form.is_valid():
            try:
                message = runs[do](request, opportunity, form)
            except LeadflowError as exc:
                error = str(exc)
            else:
                messages.success(request, message)
                return redirect(
                    "pipeline:opportunity",
                    org_slug=request.organization.slug,
                    opportunity_id=opportunity.pk,
                )
    failed = bool(error) or any(f.errors for f in forms.values())
    context = {
        "opportunity": opportunity,
        "is_open": is_open,
        "forms": forms,
        "error": error,
        "active": do,
    }
    return render(request, "pipeline/opportunity.html", context, status=400 if failed else 200)
