"""What a merge of two leads means for the pipeline (hooks.lead_merged and
lead_unmerged): the kept lead keeps the most advanced stage of the two, the
queue assignment (and its owner), and a lead.merged webhook goes out; an undo
moves the assignment back (the leads app restores both rows' values)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from leads.models import Lead, LeadStage
from pipeline.models import Assignment, StageTransition
from pipeline.services import webhooks

S = LeadStage
# How far along the funnel a stage is; a merge keeps the further one.
STAGE_RANK: dict[str, int] = {  # LeadStage members are str
    S.NEW: 0,
    S.RECYCLED: 0,
    S.DISQUALIFIED: 0,
    S.MQL: 1,
    S.SAL: 2,
    S.SQL: 3,
    S.OPPORTUNITY: 4,
    S.LOST: 4,
    S.WON: 5,
}
_STAGE_FIELDS = ("stage", "stage_changed_at", "assigned_at", "is_pql", "mql_source")


def pipeline_after_merge(organization_id: int, kept_id: int, dropped_id: int) -> dict[str, Any]:
    """Returns {"pipeline": what changed} for the undo."""
    keep = Lead.objects.get(pk=kept_id)
    drop = Lead.objects.get(pk=dropped_id)
    done: dict[str, Any] = {}
    advanced = STAGE_RANK.get(drop.stage, 0) > STAGE_RANK.get(keep.stage, 0)
    if advanced:
        move = StageTransition.objects.create(
            organization_id=organization_id,
            lead=keep,
            from_stage=keep.stage,
            to_stage=drop.stage,
            rule="merge",
            reason_code="merged",
            reason=f"Merged with lead {dropped_id}, which was further along.",
        )
        Lead.objects.filter(pk=kept_id).update(
            **{name: getattr(drop, name) for name in _STAGE_FIELDS}, updated_at=timezone.now()
        )
        done["transition"] = move.pk
    current = {
        a.lead_id: a
        for a in Assignment.objects.filter(lead_id__in=[kept_id, dropped_id], is_current=True)
    }
    ours, theirs = current.get(kept_id), current.get(dropped_id)
    if theirs is not None and (ours is None or advanced):
        if ours is not None:
            Assignment.objects.filter(pk=ours.pk).update(is_current=False)
            done["retired"] = ours.pk
        Assignment.objects.filter(pk=theirs.pk).update(lead_id=kept_id)
        done["moved"] = theirs.pk
    surviving = theirs if "moved" in done else ours
    if surviving is not None and keep.owner_id != surviving.membership_id:
        # The queue is the rep's: the lead stays where it waits.
        Lead.objects.filter(pk=kept_id).update(owner_id=surviving.membership_id)
        done["owner"] = surviving.membership_id
    webhooks.webhooks_on_lead_merged(organization_id, kept_id, dropped_id)
    return {"pipeline": done}


def pipeline_after_unmerge(
    organization_id: int, kept_id: int, dropped_id: int, changes: dict[str, Any]
) -> None:
    done = (changes or {}).get("pipeline") or {}
    if "transition" in done:
        keep = Lead.objects.get(pk=kept_id)
        StageTransition.objects.create(
            organization_id=organization_id,
            lead_id=kept_id,
            from_stage=StageTransition.objects.get(pk=done["transition"]).to_stage,
            to_stage=keep.stage,
            rule="merge",
            reason_code="merge_undone",
            reason=f"Merge with lead {dropped_id} undone.",
        )
    if "moved" in done:
        Assignment.objects.filter(pk=done["moved"], lead_id=kept_id).update(lead_id=dropped_id)
    if "retired" in done:
        Assignment.objects.filter(pk=done["retired"], lead_id=kept_id).update(is_current=True)
