"""The opportunity board's stages per organization, and moving a deal between them.

A move between open stages changes the deal's stage and probability. A move into
a won or lost stage closes the deal through `opportunity_close` (the lead moves
to won / lost through the one transition table; lost needs a reason); a move out
of a lost stage reopens it through `lead_reopen`. Whatever the table refuses
(reopening a won deal, a rep moving another rep's deal) is refused here too.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from accounts.models import Membership
from leadflow.core.errors import LeadflowError
from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from pipeline.errors import OpportunityInvalid
from pipeline.models import DealStage, DealStageKind, Opportunity, OpportunityStatus
from pipeline.services.sales import _locked_opportunity, lead_reopen, opportunity_close

# (name, probability %, kind) of a new organization's board.
DEFAULT_STAGES: list[tuple[str, int, str]] = [
    ("Qualification", 10, DealStageKind.OPEN),
    ("Proposal", 40, DealStageKind.OPEN),
    ("Negotiation", 70, DealStageKind.OPEN),
    ("Won", 100, DealStageKind.WON),
    ("Lost", 0, DealStageKind.LOST),
]


class DealStageInvalid(LeadflowError):
    """A stage change the board cannot take (a duplicate name, the last stage of a kind,
    a stage that still holds deals)."""


def deal_stages_install(*, organization_id: int) -> list[DealStage]:
    """The organization's stages, the defaults created first if it has none (idempotent)."""
    stages = list(DealStage.objects.filter(organization_id=organization_id))
    if stages:
        return stages
    with transaction.atomic():
        try:
            with transaction.atomic():
                DealStage.objects.bulk_create(
                    DealStage(
                        organization_id=organization_id,
                        name=name,
                        position=n,
                        probability=probability,
                        kind=kind,
                    )
                    for n, (name, probability, kind) in enumerate(DEFAULT_STAGES)
                )
        except IntegrityError:
            pass  # another request installed them first
    return list(DealStage.objects.filter(organization_id=organization_id))


def install_default_stages_for(organization, owner=None, business_type: str = "b2b") -> None:
    """organization_created hook (accounts): a new organization's board has the default stages."""
    with tenant_scope(organization):
        deal_stages_install(organization_id=organization.pk)


def stage_for_status(stages: list[DealStage], status: str) -> DealStage | None:
    """The first stage of a deal status's kind (open / won / lost have the same values)."""
    return next((s for s in stages if s.kind == status), None)


@transaction.atomic
def deal_stage_save(*, stage: DealStage, actor: Membership) -> DealStage:
    """Add or rename a stage (a new one goes last). A stage holding deals keeps its
    kind: its deals' status would no longer match it."""
    if stage.pk is None:
        top = DealStage.objects.aggregate(n=Max("position"))["n"]
        stage.position = 0 if top is None else top + 1
    else:
        before = DealStage.objects.select_for_update().get(pk=stage.pk)
        if before.kind != stage.kind:
            if Opportunity.objects.filter(stage_id=stage.pk).exists():
                raise DealStageInvalid(
                    f"“{before.name}” holds deals: move them before changing its kind."
                )
            _keep_one_of_kind(before)
    if DealStage.objects.filter(name__iexact=stage.name).exclude(pk=stage.pk).exists():
        raise DealStageInvalid(f"There is already a stage called “{stage.name}”.")
    stage.save()
    return stage


def _keep_one_of_kind(stage: DealStage) -> None:
    if not DealStage.objects.filter(kind=stage.kind).exclude(pk=stage.pk).exists():
        label = DealStageKind(stage.kind).label.lower()
        raise DealStageInvalid(f"The board needs at least one {label} stage.")


@transaction.atomic
def deal_stage_delete(*, stage: DealStage, actor: Membership) -> None:
    """Delete a stage that holds no deals and is not the last of its kind."""
    stage = DealStage.objects.select_for_update().get(pk=stage.pk)
    held = Opportunity.objects.filter(stage_id=stage.pk).count()
    if held:
        raise DealStageInvalid(
            f"“{stage.name}” holds {held} deal{'s' if held != 1 else ''}: move them first."
        )
    _keep_one_of_kind(stage)
    stage.delete()


@transaction.atomic
def deal_stage_move(*, stage: DealStage, actor: Membership, offset: int) -> list[DealStage]:
    """Move a stage `offset` places left (-) or right (+) and renumber them all 0…n-1."""
    stages = list(DealStage.objects.select_for_update().order_by("position", "pk"))
    index = next(i for i, s in enumerate(stages) if s.pk == stage.pk)
    moved = stages.pop(index)
    stages.insert(max(0, min(len(stages), index + offset)), moved)
    for position, item in enumerate(stages):
        if item.position != position:
            item.position = position
            item.save(update_fields=["position"])
    return stages


@transaction.atomic
def opportunity_move(
    *, opportunity: Opportunity, stage: DealStage, actor: Membership, reason: str = ""
) -> Opportunity:
    """Drop a deal into a board column under the edit form's rules (see the module)."""
    current = _locked_opportunity(opportunity, actor)  # a rep: their own deals only
    reason = (reason or "").strip()
    if stage.kind == DealStageKind.OPEN:
        if current.status == OpportunityStatus.WON:
            raise OpportunityInvalid("A won deal cannot be reopened.")
        if current.status == OpportunityStatus.LOST:
            if not reason:
                raise OpportunityInvalid("Give a reason for reopening this lost deal.")
            lead = Lead(pk=current.lead_id, organization_id=current.organization_id)
            lead_reopen(lead=lead, actor=actor, reason=reason)
    elif current.status != OpportunityStatus.OPEN:
        if current.status != stage.kind:
            raise OpportunityInvalid(
                f"This deal is already {current.get_status_display().lower()};"
                " reopen it before closing it again."
            )
    else:
        opportunity_close(
            opportunity=current,
            actor=actor,
            won=stage.kind == DealStageKind.WON,
            reason=reason,
        )
    fields: dict[str, Any] = {"stage_id": stage.pk}
    if stage.kind == DealStageKind.OPEN:
        fields["probability"] = stage.probability
    Opportunity.objects.filter(pk=current.pk).update(**fields)
    current.refresh_from_db()
    return current
