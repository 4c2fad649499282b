"""Bulk actions of the lead list contributed by higher apps (the pipeline's
"mark won / lost"), registered in their AppConfig.ready(): leads cannot import
them. Each says which permission it needs and returns the message to show."""

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


bulk_actions: list[BulkAction] = []


def bulk_actions_for(membership) -> list[BulkAction]:
    return [a for a in bulk_actions if membership.has_perm(a.permission)]
