"""The queue page's rows and header figures come from statements compiled once
per process (leadflow.core.prepared): each call must answer exactly what the
ORM answers for its own rep, time, page and tenant."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from django_scopes import ScopeError, scopes_disabled

from leadflow.core.prepared import STAND_IN_TIME, PreparedQuery
from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from pipeline import selectors
from pipeline.views.queue import row_columns
from tests.factories import ActivityFactory, FollowUpFactory, OpportunityFactory
from tests.pipeline.support import pipeline_only, rep
from tests.pipeline.test_queue_counts import HOUR, _every_case

__all__ = ["pipeline_only"]  # the autouse fixture, imported for this module

pytestmark = pytest.mark.django_db
SHOWN = (
    "pk", "first_name", "email", "stage", "score", "band", "last_activity_at", "sla_due_at",
    "assignment_reason", "assignment_method", "accepted_at", "breached_at", "team_name",
    "last_activity_kind", "has_overdue_task", "is_stalled",
)  # fmt: skip


def _seen(rows) -> list[tuple]:
    deal = lambda row: getattr(getattr(row, "opportunity", None), "amount", None)  # noqa: E731
    return [(*(getattr(row, name) for name in SHOWN), deal(row)) for row in rows]


def _orm_page(membership, now, offset, limit) -> list[Lead]:
    return list(row_columns(selectors.rep_queue(membership=membership, now=now))[offset:][:limit])


def _world(membership, now) -> None:
    _every_case(membership, now)
    with tenant_scope(membership.organization):
        leads = list(Lead.objects.filter(owner=membership))  # not every case sets an owner
        for n, lead in enumerate(leads[:6]):
            ActivityFactory(lead=lead, kind="call", occurred_at=now - n * HOUR)
            FollowUpFactory(lead=lead, assignee=membership, due_at=now + (n - 3) * HOUR)
        lead = leads[-1]
        lead.stage = "opportunity"
        lead.save(update_fields=["stage"])
        OpportunityFactory(lead=lead, owner=membership, amount=1234)


def test_pages_equal_the_orm_for_each_rep_time_and_tenant(org, other_org, sales_rep):
    now = timezone.now()
    with tenant_scope(other_org):
        foreign = rep(other_org)
    _world(foreign, now)
    _world(sales_rep, now)
    with tenant_scope(org):
        colleague = rep(org)
    _world(colleague, now)
    with tenant_scope(org):
        for membership in (sales_rep, colleague):
            for when in (now, now - 3 * HOUR, now + dt.timedelta(days=2)):
                for offset, limit in ((0, 50), (0, 7), (7, 7), (200, 10)):
                    ours = selectors.rep_queue_page(
                        membership=membership, now=when, offset=offset, limit=limit
                    )
                    expected = _orm_page(membership, when, offset, limit)
                    assert _seen(ours) == _seen(expected)
                assert selectors.rep_queue_counts(membership=membership, now=when) == (
                    _counts(membership, when)
                )
        full = selectors.rep_queue_page(membership=sales_rep, now=now, offset=0, limit=50)
        assert len(full) > 20 and any(row.is_stalled for row in full)
        assert any(getattr(row, "opportunity", None) for row in full)
        # The other tenant's rep in this tenant's scope: nothing of theirs leaks in.
        assert selectors.rep_queue_page(membership=foreign, now=now, offset=0, limit=50) == []
    with tenant_scope(other_org):
        theirs = selectors.rep_queue_page(membership=foreign, now=now, offset=0, limit=50)
        assert _seen(theirs) == _seen(_orm_page(foreign, now, 0, 50)) and theirs


def _counts(membership, now) -> dict:
    rows = list(selectors._queue_counts(membership, now))
    by_stage = {stage: n for stage, n, _late in rows}
    return {
        "total": sum(by_stage.values()),
        "overdue": sum(late for _stage, _n, late in rows),
        **{stage: by_stage.get(stage, 0) for stage in selectors.OPEN_STAGES},
    }


def test_outside_one_tenant_the_orm_answers_and_no_scope_fails_closed(org, sales_rep):
    now = timezone.now()
    _world(sales_rep, now)
    with pytest.raises(ScopeError):
        selectors.rep_queue_page(membership=sales_rep, now=now, offset=0, limit=50)
    with scopes_disabled():
        rows = selectors.rep_queue_page(membership=sales_rep, now=now, offset=0, limit=50)
        assert _seen(rows) == _seen(_orm_page(sales_rep, now, 0, 50)) and rows


def test_a_value_the_statement_does_not_take_stops_the_compilation(org, sales_rep):
    from accounts.models import Membership

    ignores_now = PreparedQuery(
        lambda membership, now: Lead.objects.filter(owner=membership),
        {"membership": PreparedQuery.instance(Membership), "now": STAND_IN_TIME},
    )
    with tenant_scope(org), pytest.raises(ValueError, match="now"):
        ignores_now.run(membership=sales_rep, now=timezone.now(), limit=10)


def test_the_page_shows_its_page_of_the_queue(org, other_org, sales_rep, client_for):
    from pipeline.views.queue import QUEUE_PAGE_SIZE
    from tests.pipeline.support import mql_for
    from tests.pipeline.test_pages import row_ids, url

    with tenant_scope(other_org):
        mql_for(rep(other_org))
    with tenant_scope(org):
        for score in range(QUEUE_PAGE_SIZE + 2):
            mql_for(sales_rep, score=score, band="warm", scored_at=timezone.now())
        order = [lead.pk for lead in selectors.rep_queue(membership=sales_rep)]
    client = client_for(sales_rep)
    pages = [row_ids(client.get(url("queue", org) + f"?page={n}").content.decode()) for n in (1, 2)]
    assert pages == [order[:QUEUE_PAGE_SIZE], order[QUEUE_PAGE_SIZE:]]
    assert row_ids(client.get(url("queue", org) + "?page=9").content.decode()) == pages[1]
