"""Outcomes recorded from outside the live pipeline: a CSV import's outcome
column, an integration's won/lost call, a bulk action.

A known outcome is history, not a sales move: the lead goes straight to won or
lost as a system transition (rule `import`, `api:<key>` or `bulk`) with the
reason given, whatever stage it is in, so learning and the reports see it. A
lead with an open deal is closed with it (the deal's amount may be set); a lead
already at that outcome is left alone, so recording twice changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from leadflow.core.errors import LeadflowError
from leads.models import Lead, LeadStage
from pipeline.hooks import fire_stage_changed
from pipeline.models import Opportunity, OpportunityStatus, StageTransition

IMPORTED_OUTCOME = "imported outcome"
OUTCOME_STAGES = {"won": LeadStage.WON, "lost": LeadStage.LOST}


class OutcomeInvalid(LeadflowError):
    """An outcome that can't be recorded (unknown value, a date in the future)."""


@transaction.atomic
def outcomes_record(
    *,
    organization_id: int,
    outcomes: Iterable[tuple[int, str, datetime | None]],
    rule: str,
    reason: str = IMPORTED_OUTCOME,
    amount: Decimal | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Move each (lead id, "won"/"lost", when or None) to its outcome stage.

    Constant statements per distinct outcome: lock-and-read, insert the
    transitions, update the leads, close their open deals. Discarded and merged
    leads are skipped. Returns the ids moved."""
    now = now or timezone.now()
    wanted: dict[int, tuple[str, datetime]] = {}
    for lead_id, outcome, at in outcomes:
        if outcome not in OUTCOME_STAGES:
            raise OutcomeInvalid(f"Unknown outcome {outcome!r}: use won or lost.")
        if at is not None and at > now:
            raise OutcomeInvalid("An outcome cannot be dated in the future.")
        wanted[lead_id] = (OUTCOME_STAGES[outcome], at or now)
    if not wanted:
        return []
    rows = list(
        Lead.objects.select_for_update()
        .filter(pk__in=list(wanted), discarded_at__isnull=True, merged_into__isnull=True)
        .order_by("pk")
        .values_list("pk", "stage")
    )
    moves = [(pk, stage, *wanted[pk]) for pk, stage in rows if stage != wanted[pk][0]]
    if not moves:
        return []
    StageTransition.objects.bulk_create(
        StageTransition(
            organization_id=organization_id, lead_id=pk, from_stage=stage, to_stage=to,
            occurred_at=at, rule=rule[:40], reason=reason,
        )
        for pk, stage, to, at in moves
    )  # fmt: skip
    by_move: dict[tuple[str, str], list[int]] = defaultdict(list)
    by_target: dict[tuple[str, datetime], list[int]] = defaultdict(list)
    for pk, stage, to, at in moves:
        by_move[(stage, to)].append(pk)
        by_target[(to, at)].append(pk)
    for (to, at), pks in by_target.items():
        Lead.objects.filter(pk__in=pks).update(stage=to, stage_changed_at=at, updated_at=now)
        deals = Opportunity.objects.filter(lead_id__in=pks, status=OpportunityStatus.OPEN)
        fields: dict[str, object] = {
            "status": OpportunityStatus.WON if to == LeadStage.WON else OpportunityStatus.LOST,
            "closed_at": at,
            "close_reason": reason,
            "probability": 100 if to == LeadStage.WON else 0,
        }
        if amount is not None:
            fields["amount"] = amount
        deals.update(**fields)
    for (stage, to), pks in by_move.items():
        fire_stage_changed(organization_id, pks, stage, to)
    return [pk for pk, *_ in moves]


def outcomes_after_import(
    organization_id: int, outcomes: list[tuple[int, str, datetime | None]]
) -> None:
    """leadflow.core.hooks.import_outcome (leads): an import's outcome column, as history."""
    outcomes_record(organization_id=organization_id, outcomes=outcomes, rule="import")


def _bulk(outcome: str, reason: str):
    def run(request, leads) -> str:
        moved = outcomes_record(
            organization_id=request.organization.pk,
            outcomes=[(pk, outcome, None) for pk in leads.values_list("pk", flat=True)],
            rule="bulk",
            reason=f"{reason} by {request.user.email}",
        )
        return f"{len(moved)} lead{'s' if len(moved) != 1 else ''} marked {outcome}."

    return run


def bulk_outcome_actions():
    """The lead list's "mark won / lost" (known outcomes, e.g. from a CRM report)."""
    from accounts.permissions import Perm
    from leads.bulk import BulkAction

    return [
        BulkAction("mark_won", "Mark won (known outcome)", Perm.MANAGE_SCORING,
                   _bulk("won", "Marked won in bulk")),
        BulkAction("mark_lost", "Mark lost (known outcome)", Perm.MANAGE_SCORING,
                   _bulk("lost", "Marked lost in bulk")),
    ]  # fmt: skip
