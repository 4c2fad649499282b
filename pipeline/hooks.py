"""One-way wiring for apps above the pipeline (nurture, reports, webhooks).

`stage_changed_hooks` callables are called as
`(organization_id, lead_ids, from_stage_or_"", to_stage)` after every stage
change (one lead or a bulk move), inside the transaction that made it, so a
subscriber's writes commit or roll back with the transition. `from_stage` is ""
when a bulk move took leads from several stages at once; subscribers that need
each lead's previous stage read the StageTransition rows.
Subscribers register in their AppConfig.ready() and must not import views.
"""

from __future__ import annotations

from collections.abc import Callable

StageChangedHook = Callable[[int, list[int], str, str], None]

stage_changed_hooks: list[StageChangedHook] = []


def fire_stage_changed(
    organization_id: int, lead_ids: list[int], from_stage: str, to_stage: str
) -> None:
    if not lead_ids:
        return
    for hook in list(stage_changed_hooks):
        hook(organization_id, list(lead_ids), from_stage, to_stage)
