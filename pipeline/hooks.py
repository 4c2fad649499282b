"""Fires leadflow.core.hooks.stage_changed after every stage change (one lead or a
bulk move), inside the transaction that made it, so a subscriber's writes
commit or roll back with the transition. `from_stage` is "" when a bulk move
took leads from several stages at once; subscribers that need each lead's
previous stage read the StageTransition rows.
"""

from __future__ import annotations

from leadflow.core import hooks


def fire_stage_changed(
    organization_id: int, lead_ids: list[int], from_stage: str, to_stage: str
) -> None:
    if not lead_ids:
        return
    for hook in hooks.stage_changed.receivers():
        hook(organization_id, list(lead_ids), from_stage, to_stage)
