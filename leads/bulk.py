"""Bulk actions of the lead list contributed by higher apps (the pipeline's
"mark won / lost", nurture's "add to list"), registered in their
AppConfig.ready(): leads cannot import them. Each says which permission it
needs and returns the message to show; one that needs a choice (which list)
names its form field and the options to offer, and reads it from request.POST."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from accounts.permissions import Perm


@dataclass(frozen=True)
class BulkAction:
    key: str
    label: str
    permission: Perm
    # (request, leads queryset) -> message; raises LeadflowError to refuse.
    run: Callable
    # The select the bulk bar shows for this action: its name, its empty label
    # and a callable giving the active organization's [(value, label)].
    field: str = ""
    field_label: str = ""
    options: Callable[[], list[tuple[str, str]]] | None = None
    # The model its options list: the lead list's kept controls are forgotten
    # when one changes (leads.controls).
    options_model: type | None = None


bulk_actions: list[BulkAction] = []


def register(*actions: BulkAction) -> None:
    """Add bulk actions to the lead list (once each, from an AppConfig.ready())."""
    from leads import controls

    for action in actions:
        if any(a.key == action.key for a in bulk_actions):
            continue
        bulk_actions.append(action)
        if action.options_model is not None:
            controls.watch(action.options_model)


def bulk_actions_for(membership) -> list[BulkAction]:
    return [a for a in bulk_actions if membership.has_perm(a.permission)]
