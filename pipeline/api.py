"""The pipeline JSON API: move a lead between stages and read its stage history.

An API key acts as an integration, not a person: it may make the moves the
transition table (pipeline.stages) gives to automatic rules — hand a lead to
sales as an MQL, send it back to nurture — and, like a person, must give a
reason where the table asks for one. Moves the table keeps for sales (accept,
BANT-qualified SQL, opportunities, won/lost) need the rep's data and stay in
the app. An illegal move is a 400 naming the moves that are possible.
"""

from __future__ import annotations

from django.db import transaction
from django.http import Http404
from ninja.decorators import decorate_view

from accounts.api_auth import ApiError, json_body, tenant_router
from leadflow.core.api_schemas import API_ERRORS, API_WRITE_ERRORS
from leadflow.core.tenancy import get_tenant_object_or_404
from leads.models import Lead, LeadStage
from leads.services.activities import MAX_ID
from pipeline.api_schemas import (
    OutcomeIn,
    OutcomeOut,
    StageHistoryOut,
    TransitionIn,
    TransitionResultOut,
)
from pipeline.errors import IntegrationMoveRefused, LeadInactive, ReasonRequired
from pipeline.models import StageTransition
from pipeline.services.integrations import integration_transition
from pipeline.services.outcomes import OutcomeInvalid, outcomes_record
from pipeline.stages import allowed_targets

TRANSITION_BODY_LIMIT = 16 * 1024
HISTORY_LIMIT = 1000

pipeline_router = tenant_router()

_STAGE_LABELS = dict(LeadStage.choices)


def _check_id(lead_id: int) -> None:
    # Out-of-range ids would overflow the database's integer: simply not found.
    if not 0 < lead_id <= MAX_ID:
        raise Http404("No lead matches the given query.")


def _transition_out(row: StageTransition) -> dict:
    actor = row.actor.user.email if row.actor_id and row.actor else None
    return {
        "id": row.pk,
        "from_stage": row.from_stage,
        "to_stage": row.to_stage,
        "occurred_at": row.occurred_at,
        "actor_email": actor,
        "rule": row.rule,
        "reason_code": row.reason_code,
        "reason": row.reason,
    }


def _not_allowed(message: str, stage: str) -> ApiError:
    targets = allowed_targets(stage, None)
    hint = (
        f" From {_STAGE_LABELS[stage]}, an integration may move it to: " + ", ".join(targets) + "."
        if targets
        else f" An integration cannot move a lead out of {_STAGE_LABELS[stage]}."
    )
    return ApiError(
        400,
        "transition_not_allowed",
        message + hint,
        [{"field": "to", "code": "not_allowed", "allowed": targets}],
    )


@pipeline_router.post(
    "/{lead_id}/transitions",
    response={200: TransitionResultOut, **API_WRITE_ERRORS},
    summary="Move a lead to another stage",
)
@decorate_view(json_body(TRANSITION_BODY_LIMIT))
def transition_create(request, lead_id: int, payload: TransitionIn):
    """Move a lead along the pipeline as this integration, e.g. `{"to": "mql",
    "reason": "Booked a demo in our CRM"}` or `{"to": "recycled", "reason_code":
    "not_now", "reason": "…"}`. The move is recorded in the stage history with
    rule `api:<key name>`, and webhooks fire as for any stage change."""
    _check_id(lead_id)
    try:
        lead, transition = integration_transition(
            lead_id=lead_id,
            to=payload.to,
            reason_code=payload.reason_code,
            reason=payload.reason,
            source=request.auth.name,
        )
    except LeadInactive as exc:
        raise ApiError(400, "lead_inactive", str(exc)) from exc
    except IntegrationMoveRefused as exc:
        raise _not_allowed(str(exc), exc.from_stage) from exc
    except ReasonRequired as exc:
        raise ApiError(
            400,
            "reason_required",
            str(exc),
            [{"field": "reason", "code": "required", "message": "A reason is required."}],
        ) from exc
    return {"lead_id": lead.pk, "stage": lead.stage, "transition": _transition_out(transition)}


@pipeline_router.post(
    "/{lead_id}/outcome",
    response={200: OutcomeOut, **API_WRITE_ERRORS},
    summary="Record a lead's outcome (won or lost)",
)
@decorate_view(json_body(TRANSITION_BODY_LIMIT))
def outcome_record(request, lead_id: int, payload: OutcomeIn):
    """Record what became of a lead in your CRM, e.g. `{"outcome": "won", "amount":
    "1200.00"}` or `{"outcome": "lost", "reason": "Chose a competitor"}`. The lead
    moves to won or lost from any stage as a system transition (rule `api:<key
    name>`); an open deal is closed with it. Scoring learns from these outcomes."""
    _check_id(lead_id)
    if payload.outcome == "lost" and not payload.reason:
        raise ApiError(
            400,
            "reason_required",
            "Give a `reason` for a lost lead.",
            [{"field": "reason", "code": "required", "message": "A reason is required."}],
        )
    with transaction.atomic():
        lead = get_tenant_object_or_404(Lead.objects.select_for_update(), pk=lead_id)
        if lead.merged_into_id or lead.discarded_at:
            raise ApiError(
                400,
                "lead_inactive",
                "This lead was merged into another or discarded; use the surviving lead.",
            )
        try:
            moved = outcomes_record(
                organization_id=lead.organization_id,
                outcomes=[(lead.pk, payload.outcome, payload.occurred_at)],
                rule=f"api:{request.auth.name}",
                reason=payload.reason or f"{payload.outcome} (recorded by integration)",
                amount=payload.amount,
            )
        except OutcomeInvalid as exc:
            raise ApiError(400, "outcome_invalid", str(exc)) from exc
    stage = LeadStage.WON if payload.outcome == "won" else LeadStage.LOST
    return {"lead_id": lead.pk, "stage": stage, "recorded": bool(moved)}


@pipeline_router.get(
    "/{lead_id}/stage-history",
    response={200: StageHistoryOut, **API_ERRORS},
    summary="A lead's stage history",
)
def stage_history(request, lead_id: int):
    """Every stage change of the lead, oldest first: from, to, when, who or which rule, why.
    History is append-only, so a lead moved back (e.g. a reopened deal) shows both moves."""
    _check_id(lead_id)
    lead = get_tenant_object_or_404(Lead, pk=lead_id)
    rows = (
        StageTransition.objects.filter(lead=lead)
        .select_related("actor__user")
        .order_by("occurred_at", "pk")[:HISTORY_LIMIT]
    )
    return {"lead_id": lead.pk, "stage": lead.stage, "items": [_transition_out(r) for r in rows]}
