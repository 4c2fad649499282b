"""Settings of the opportunity board's stages: add, rename, reorder, delete."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.errors import LeadflowError
from leadflow.core.formpage import form_page
from leadflow.core.tenancy import get_tenant_object_or_404
from pipeline import services
from pipeline.forms import DealStageForm
from pipeline.models import DealStage


def _to_stages(request):
    return redirect("pipeline:deal_stages", org_slug=request.organization.slug)


@org_view(Perm.MANAGE_ROUTING)
def deal_stages(request):
    services.deal_stages_install(organization_id=request.organization.pk)
    stages = list(DealStage.objects.annotate(deal_count=Count("deals")).order_by("position", "pk"))
    return render(request, "pipeline/deal_stages.html", {"stages": stages})


def _stage_page(request, stage: DealStage, title: str, success: str):
    form = DealStageForm(request.POST or None, instance=stage)
    return form_page(
        request,
        form,
        save=lambda form: services.deal_stage_save(
            stage=form.save(commit=False), actor=request.membership
        ),
        saved=lambda obj: (success.format(obj=obj), _to_stages(request)),
        template="pipeline/settings_form.html",
        context={
            "title": title,
            "back_url": reverse(
                "pipeline:deal_stages", kwargs={"org_slug": request.organization.slug}
            ),
            "back_label": "Deal stages",
        },
    )


@org_view(Perm.MANAGE_ROUTING)
def deal_stage_create(request):
    stage = DealStage(organization=request.organization)
    return _stage_page(request, stage, "New stage", "Stage “{obj}” added at the end of the board.")


@org_view(Perm.MANAGE_ROUTING)
def deal_stage_edit(request, deal_stage_id: int):
    stage = get_tenant_object_or_404(DealStage, pk=deal_stage_id)
    return _stage_page(request, stage, f"Stage {stage.name}", "Stage “{obj}” saved.")


@require_POST
@org_view(Perm.MANAGE_ROUTING)
def deal_stage_delete(request, deal_stage_id: int):
    stage = get_tenant_object_or_404(DealStage, pk=deal_stage_id)
    try:
        services.deal_stage_delete(stage=stage, actor=request.membership)
    except LeadflowError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Stage “{stage.name}” deleted.")
    return _to_stages(request)


@require_POST
@org_view(Perm.MANAGE_ROUTING)
def deal_stage_reorder(request, deal_stage_id: int):
    """One place left or right ("direction": up / down)."""
    stage = get_tenant_object_or_404(DealStage, pk=deal_stage_id)
    offset = -1 if request.POST.get("direction") == "up" else 1
    services.deal_stage_move(stage=stage, actor=request.membership, offset=offset)
    return _to_stages(request)
