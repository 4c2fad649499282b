"""The rep queue's header figures (`rep_queue_counts`) against the queue itself.

The counts aggregate the plain lead rows joined to their current assignment; the
queue (`rep_queue`) computes each lead's `sla_due_at` and `breached_at`. Both must
tell the same story: every open stage, every SLA case, and leads that must not
count (another rep's, another tenant's, closed, merged, assignment ended)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from pipeline import selectors
from pipeline.models import OPEN_STAGES
from tests.factories import AssignmentFactory, LeadFactory
from tests.pipeline.support import pipeline_only, rep

__all__ = ["pipeline_only"]  # the autouse fixture, imported for this module

pytestmark = pytest.mark.django_db
HOUR = dt.timedelta(hours=1)


def _lead(membership, stage, **clocks) -> None:
    """An open lead of `stage` currently assigned to `membership`, with its SLA clocks."""
    lead = LeadFactory(organization=membership.organization, stage=stage)
    AssignmentFactory(lead=lead, membership=membership, **clocks)


def _every_case(membership, now) -> None:
    past, future = now - HOUR, now + HOUR
    for stage in OPEN_STAGES:
        _lead(membership, stage)  # no clock running
        _lead(membership, stage, accept_due_at=past)  # accept overdue
        _lead(membership, stage, accept_due_at=past, accepted_at=past)  # accepted in the end
        _lead(membership, stage, accept_due_at=future)  # accept still on time
        _lead(membership, stage, first_touch_due_at=past)  # first touch overdue
        _lead(membership, stage, first_touch_due_at=past, first_touched_at=past)  # touched
        _lead(membership, stage, accept_due_at=future, first_touch_due_at=past)  # one of two
        _lead(membership, stage, first_touch_due_at=future, breached_at=past)  # marked breached
        _lead(membership, stage, accept_due_at=past, accepted_at=past, first_touch_due_at=future)


def _from_the_queue(membership, now) -> dict[str, int]:
    """The figures as the queue's own rows give them (what the counts once aggregated)."""
    rows = list(selectors.rep_queue(membership=membership))
    counts = {stage: sum(r.stage == stage for r in rows) for stage in OPEN_STAGES}
    overdue = [r for r in rows if (r.sla_due_at and r.sla_due_at < now) or r.breached_at]
    return {"total": len(rows), "overdue": len(overdue), **counts}


def test_counts_equal_the_queue_in_every_bucket(org, other_org, sales_rep):
    now = timezone.now()
    with tenant_scope(other_org):
        _every_case(rep(other_org), now)  # a second tenant
    with tenant_scope(org):
        _every_case(sales_rep, now)
        _every_case(rep(org), now)  # another rep of the same tenant
        # Not in the queue: closed, merged, and a lead whose assignment ended.
        _lead(sales_rep, "won", accept_due_at=now - HOUR)
        keep = LeadFactory(organization=org, stage="mql")
        _lead(sales_rep, "sal", first_touch_due_at=now - HOUR)
        merged = LeadFactory(organization=org, stage="mql", merged_into=keep)
        AssignmentFactory(lead=merged, membership=sales_rep, accept_due_at=now - HOUR)
        ended = LeadFactory(organization=org, stage="mql", owner=sales_rep)
        AssignmentFactory(
            lead=ended, membership=sales_rep, is_current=False, breached_at=now - HOUR
        )

        counts = selectors.rep_queue_counts(membership=sales_rep, now=now)
        assert counts == _from_the_queue(sales_rep, now)
    # 9 per stage, of which 4 overdue; plus the extra overdue SAL lead; plus the lead
    # whose assignment ended (it is the rep's, in the queue, with no clock running).
    assert counts == {
        "total": 38,
        "overdue": 17,
        "mql": 10,
        "sal": 10,
        "sql": 9,
        "opportunity": 9,
    }
