"""Outcomes carried by lead data (an import's outcome column) handed to the
pipeline, which records them as stage history. Leads cannot import the
pipeline: it registers on leadflow.core.hooks.import_outcome (see pipeline.apps)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from leadflow.core import hooks


def import_outcomes_fire(
    organization_id: int, outcomes: Iterable[tuple[int | None, tuple[str, datetime | None] | None]]
) -> None:
    """(lead id, outcome of its row) pairs from an import chunk; rows without
    a lead or an outcome are skipped, dates in the future count as now."""
    now = timezone.now()
    rows = [
        (lead_id, outcome, at if at is None or at <= now else None)
        for lead_id, found in outcomes
        if lead_id and found
        for outcome, at in [found]
    ]
    if rows:
        hooks.import_outcome.call(organization_id, rows)
