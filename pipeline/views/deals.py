"""The opportunity board and one deal's page (edit, close, reopen)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import org_view
from accounts.models import Role
from accounts.permissions import Perm
from leadflow.core.errors import LeadflowError
from leadflow.core.tenancy import get_tenant_object_or_404
from pipeline import selectors, services
from pipeline.errors import NotYourLead
from pipeline.forms import BoardMoveForm, CloseForm, OpportunityForm, ReasonForm
from pipeline.models import DealStage, Opportunity, OpportunityStatus
from pipeline.views.queue import close_deal


def _board(request, *, notice: str = "", error: str = "", status: int = 200):
    """The board page, or only its columns for the drag-and-drop script (HX-Request)."""
    stages = services.deal_stages_install(organization_id=request.organization.pk)
    context = {
        "columns": selectors.pipeline_board(membership=request.membership, stages=stages),
        "stages": stages,
        "can_work": request.membership.has_perm(Perm.WORK_LEADS),
        "limit": selectors.BOARD_COLUMN_LIMIT,
        "notice": notice,
        "error": error,
    }
    template = "pipeline/board.html#board" if request.htmx else "pipeline/board.html"
    return render(request, template, context, status=status)


@require_GET
@org_view(Perm.VIEW_PIPELINE)
def board(request):
    return _board(request)


@require_POST
@org_view(Perm.WORK_LEADS)
def board_move(request, opportunity_id: int):
    """Drop a deal into a column. The script gets the columns back as they now are (a
    refused move puts the card back, with the reason); without it, a redirect."""
    opportunity = _opportunity(request, opportunity_id)  # a rep's: their own, else 404
    form = BoardMoveForm(request.POST)
    error = notice = ""
    if not form.is_valid():
        error = "Choose the stage to move the deal to."
    else:
        stage = get_tenant_object_or_404(DealStage, pk=form.cleaned_data["stage"])
        try:
            services.opportunity_move(
                opportunity=opportunity,
                stage=stage,
                actor=request.membership,
                reason=form.cleaned_data["reason"],
            )
        except NotYourLead as exc:
            raise Http404(str(exc)) from exc
        except LeadflowError as exc:
            error = str(exc)
        else:
            notice = f"“{opportunity.name}” moved to {stage.name}."
    if request.htmx:
        return _board(request, notice=notice, error=error, status=400 if error else 200)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, notice)
    return redirect("pipeline:board", org_slug=request.organization.slug)


def _opportunity(request, opportunity_id: int) -> Opportunity:
    qs = Opportunity.objects.select_related("lead", "owner__user", "stage")
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
