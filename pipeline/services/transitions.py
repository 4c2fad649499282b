"""The one place a lead's stage changes.

`stage_transition` moves one lead (locking its row, so two people acting at
once cannot both move it from the same stage); `stages_transition_many` moves
a set of leads for an automatic rule in a constant number of statements.
Both check pipeline.stages.TRANSITIONS, append StageTransition rows and call
leadflow.core.hooks.stage_changed inside the transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership
from leads.models import Lead, LeadStage
from pipeline.hooks import fire_stage_changed
from pipeline.models import Assignment, StageTransition
from pipeline.stages import SYSTEM, TRANSITIONS, actor_kind, check_move

# Leaving the pipeline (back to nurture, or out) ends the rep's assignment.
RELEASING_STAGES = (LeadStage.RECYCLED, LeadStage.DISQUALIFIED)


def _release_fields(to: str) -> dict[str, Any]:
    return {"owner": None, "assigned_at": None} if to in RELEASING_STAGES else {}


@transaction.atomic
def stage_transition(
    *,
    lead: Lead,
    to: str,
    actor: Membership | None = None,
    rule: str = "",
    reason_code: str = "",
    reason: str = "",
    now: datetime | None = None,
    also_set: dict[str, Any] | None = None,
) -> StageTransition:
    """Move one lead to `to` if the transition table lets this actor do it.

    The lead row is locked and re-read, so the move starts from the stage in
    the database, not the caller's copy. `also_set` updates more lead fields in
    the same statement (e.g. mql_source)."""
    now = now or timezone.now()
    current = Lead.objects.select_for_update().only("stage").get(pk=lead.pk)
    from_stage = current.stage
    check_move(from_stage, to, actor, reason)
    fields = {"stage": to, "stage_changed_at": now, "updated_at": now}
    fields |= _release_fields(to) | (also_set or {})
    Lead.objects.filter(pk=lead.pk).update(**fields)
    if to in RELEASING_STAGES:
        Assignment.objects.filter(lead_id=lead.pk, is_current=True).update(is_current=False)
    for name, value in fields.items():
        setattr(lead, name, value)
    transition = StageTransition.objects.create(
        organization_id=lead.organization_id,
        lead_id=lead.pk,
        from_stage=from_stage,
        to_stage=to,
        occurred_at=now,
        actor=actor,
        rule=(rule or ("manual" if actor else "system"))[:40],
        reason_code=reason_code[:40],
        reason=reason.strip(),
    )
    fire_stage_changed(lead.organization_id, [lead.pk], from_stage, to)
    return transition


@transaction.atomic
def stages_transition_many(
    *,
    organization_id: int,
    lead_ids: Iterable[int],
    to: str,
    rule: str,
    reason: str = "",
    reason_code: str = "",
    actor: Membership | None = None,
    now: datetime | None = None,
    also_set: dict[str, Any] | None = None,
) -> list[int]:
    """Move every lead of `lead_ids` whose current stage may go to `to`; others are skipped.

    For automatic moves (actor None) and bulk actions. Discarded and merged
    leads are never moved. Constant statements: lock-and-read, insert the
    transitions, one UPDATE (plus one to end assignments when leaving).
    Returns the ids moved."""
    now = now or timezone.now()
    kind = actor_kind(actor)
    sources = [src for (src, dst), move in TRANSITIONS.items() if dst == to and kind in move.who]
    ids = list(dict.fromkeys(lead_ids))
    if not ids or not sources:
        return []
    if kind != SYSTEM:
        for src in sources:  # raises ReasonRequired for people without a reason
            check_move(src, to, actor, reason)
    rows = list(
        Lead.objects.select_for_update()
        .filter(pk__in=ids, stage__in=sources, discarded_at__isnull=True, merged_into__isnull=True)
        .order_by("pk")
        .values_list("pk", "stage")
    )
    if not rows:
        return []
    moved = [pk for pk, _ in rows]
    StageTransition.objects.bulk_create(
        [
            StageTransition(
                organization_id=organization_id,
                lead_id=pk,
                from_stage=stage,
                to_stage=to,
                occurred_at=now,
                actor=actor,
                rule=rule[:40],
                reason_code=reason_code[:40],
                reason=reason,
            )
            for pk, stage in rows
        ]
    )
    fields = {"stage": to, "stage_changed_at": now, "updated_at": now}
    Lead.objects.filter(pk__in=moved).update(**fields, **_release_fields(to), **(also_set or {}))
    if to in RELEASING_STAGES:
        Assignment.objects.filter(lead_id__in=moved, is_current=True).update(is_current=False)
    by_source: dict[str, list[int]] = defaultdict(list)
    for pk, stage in rows:
        by_source[stage].append(pk)
    for stage, pks in by_source.items():
        fire_stage_changed(organization_id, pks, stage, to)
    return moved
