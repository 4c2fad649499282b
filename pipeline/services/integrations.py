"""Moves made by an API integration (an API key acts as one, not as a person)."""

from __future__ import annotations

from django.db import transaction

from leadflow.core.tenancy import get_tenant_object_or_404
from leads.models import Lead, LeadStage
from pipeline.errors import (
    IntegrationMoveRefused,
    LeadInactive,
    ReasonRequired,
    TransitionNotAllowed,
)
from pipeline.models import StageTransition
from pipeline.services.transitions import stage_transition
from pipeline.stages import TRANSITIONS, check_move


@transaction.atomic
def integration_transition(
    *, lead_id: int, to: str, reason_code: str, reason: str, source: str
) -> tuple[Lead, StageTransition]:
    """Check the move for an integration actor under the lead's row lock, then make it
    (rule `api:<source>`). Raises LeadInactive, IntegrationMoveRefused or ReasonRequired."""
    lead: Lead = get_tenant_object_or_404(Lead.objects.select_for_update(), pk=lead_id)
    if lead.merged_into_id or lead.discarded_at:
        raise LeadInactive(
            "This lead was merged into another or discarded; move the surviving lead instead."
        )
    try:
        check_move(lead.stage, to, None, reason)
    except TransitionNotAllowed as exc:
        message = str(exc).replace("automatic rules", "an API integration")
        raise IntegrationMoveRefused(message, from_stage=lead.stage) from exc
    if TRANSITIONS[(lead.stage, to)].reason_required and not reason:
        labels = dict(LeadStage.choices)
        raise ReasonRequired(
            f"Give a `reason` for moving the lead from {labels[lead.stage]} to {labels[to]}."
        )
    transition = stage_transition(
        lead=lead, to=to, rule=f"api:{source}", reason_code=reason_code, reason=reason
    )
    return lead, transition
