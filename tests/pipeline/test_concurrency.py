"""Two people acting on one lead at the same moment: one of them wins, the other
gets a clear domain error, and the history records the move once.

Real threads with their own database connections, released together by a
barrier, so this needs PostgreSQL's row locks (SQLite serializes writers and
would prove nothing). Routing under concurrency is test_routing_concurrency.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from leads.models import Lead, LeadStage
from pipeline import services
from pipeline.errors import NotYourLead, PipelineError, TransitionNotAllowed
from pipeline.models import Assignment, StageTransition
from tests.factories import AssignmentFactory, LeadFactory, MembershipFactory
from tests.pipeline.support import fresh, pipeline_only  # noqa: F401

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL row locks (SQLite serializes writers)",
    ),
    pytest.mark.django_db(transaction=True),
]


def race(org, calls: list[Callable[[], object]]) -> list[object]:
    """Run the calls in threads released at once; each result or raised exception, in order."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def work(i: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            with tenant_scope(org.pk):
                results[i] = call()
        except Exception as exc:  # compared by the test; a thread must not die silently
            results[i] = exc
        finally:
            connection.close()  # the thread's own connection

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a racing call hung (lock never released?)"
    return results


def own_copy(org, pk: int) -> Lead:
    """A Lead instance per thread: the services write the fresh stage/owner onto it."""
    return Lead(pk=pk, organization=org)


def errors_of(results) -> list[Exception]:
    return [r for r in results if isinstance(r, Exception)]


def moves(lead) -> list[tuple[str, str]]:
    return list(
        StageTransition.objects.filter(lead_id=lead.pk).values_list("from_stage", "to_stage")
    )


def test_concurrent_accept_one_wins(org, other_org, sales_rep, admin):
    """Two reps and two admins press Accept on the same MQL at once: the assigned
    rep or an admin gets it; the other rep is refused as it is not their lead."""
    with tenant_scope(org):
        second_admin = MembershipFactory(organization=org, role=Role.ADMIN)
        second_rep = MembershipFactory(organization=org, role=Role.SALES_REP)
        lead = LeadFactory(organization=org, stage=LeadStage.MQL)
        AssignmentFactory(lead=lead, membership=sales_rep)
    with tenant_scope(other_org):
        bystander = LeadFactory(organization=other_org, stage=LeadStage.MQL)

    actors = [second_rep, sales_rep, admin, second_admin]
    outsider, *results = race(
        org,
        [lambda a=a: services.lead_accept(lead=own_copy(org, lead.pk), actor=a) for a in actors],
    )

    assert type(outsider) is NotYourLead, outsider
    winners = [r for r in results if isinstance(r, StageTransition)]
    assert len(winners) == 1, results
    losers = errors_of(results)
    assert len(losers) == 2
    assert all(type(e) is TransitionNotAllowed for e in losers), losers
    assert all(str(e) == "This lead has already been accepted." for e in losers)
    with tenant_scope(org):
        assert fresh(lead).stage == LeadStage.SAL
        assert moves(lead) == [(LeadStage.MQL, LeadStage.SAL)]
        [assignment] = Assignment.objects.filter(lead=lead, is_current=True)
        assert assignment.membership_id == sales_rep.pk
        assert assignment.accepted_at == winners[0].occurred_at  # stamped once, by the winner
    with tenant_scope(other_org):
        assert fresh(bystander).stage == LeadStage.MQL
        assert not StageTransition.objects.exists()


ROUNDS = 6


def test_accept_racing_a_reassignment_leaves_one_consistent_owner(org, sales_rep, admin):
    """The rep accepts while an admin hands the lead to another rep. Whichever runs
    first, the lead ends with the new rep and exactly one current assignment; the
    accept either lands before (the lead stays accepted with the new rep) or is
    refused as not the rep's lead any more — never an accept after the handover."""
    with tenant_scope(org):
        other_rep = MembershipFactory(organization=org, role=Role.SALES_REP)
        leads = []
        for _ in range(ROUNDS):
            lead = LeadFactory(organization=org, stage=LeadStage.MQL)
            AssignmentFactory(lead=lead, membership=sales_rep)
            leads.append(lead)

    outcomes = set()
    for lead in leads:
        accepted, assigned = race(
            org,
            [
                lambda pk=lead.pk: services.lead_accept(lead=own_copy(org, pk), actor=sales_rep),
                lambda pk=lead.pk: services.lead_assign(
                    lead=own_copy(org, pk), membership=other_rep, actor=admin, reason="Covering"
                ),
            ],
        )
        assert isinstance(assigned, Assignment), assigned
        with tenant_scope(org):
            current = fresh(lead)
            assert current.owner_id == other_rep.pk
            [assignment] = Assignment.objects.filter(lead=lead, is_current=True)
            assert assignment.membership_id == other_rep.pk
            history = moves(lead)
        if isinstance(accepted, StageTransition):
            outcomes.add("accepted first")
            assert current.stage == LeadStage.SAL and history == [(LeadStage.MQL, LeadStage.SAL)]
            # Handed over after the accept: the new rep holds an accepted lead.
            assert assignment.accepted_at is not None and assignment.accept_due_at is None
        else:
            outcomes.add("reassigned first")
            assert type(accepted) is NotYourLead, accepted
            assert current.stage == LeadStage.MQL and history == []
            assert assignment.accepted_at is None
    assert outcomes  # at least one round ran; which order won is up to the scheduler


def test_two_transitions_from_the_same_stage_exactly_one_succeeds(org, other_org, admin):
    """Won and lost pressed on the same opportunity at once (three times each): the
    lock re-reads the stage, so only the first move is legal; the rest are refused."""
    with tenant_scope(org):
        lead = LeadFactory(organization=org, stage=LeadStage.OPPORTUNITY, owner=admin)

    def move(to: str):
        return services.stage_transition(
            lead=own_copy(org, lead.pk), to=to, actor=admin, reason="Race"
        )

    results = race(org, [lambda to=to: move(to) for to in [LeadStage.WON, LeadStage.LOST] * 3])

    winners = [r for r in results if isinstance(r, StageTransition)]
    assert len(winners) == 1, results
    losers = errors_of(results)
    assert len(losers) == 5 and all(type(e) is TransitionNotAllowed for e in losers), losers
    won = winners[0].to_stage
    assert all(str(e).startswith(f"A lead cannot move from {LeadStage(won).label}") for e in losers)
    with tenant_scope(org):
        assert fresh(lead).stage == won
        assert moves(lead) == [(LeadStage.OPPORTUNITY, won)]
    with tenant_scope(other_org):
        assert not StageTransition.objects.exists()


def test_a_losing_racer_never_leaves_partial_rows(org, sales_rep, admin):
    """Reject and accept of one MQL at once: one wins; the loser's transaction wrote nothing."""
    with tenant_scope(org):
        lead = LeadFactory(organization=org, stage=LeadStage.MQL)
        AssignmentFactory(lead=lead, membership=sales_rep)
    results = race(
        org,
        [
            lambda: services.lead_accept(lead=own_copy(org, lead.pk), actor=admin),
            lambda: services.lead_reject(
                lead=own_copy(org, lead.pk), actor=sales_rep, reason_code="not_now"
            ),
        ],
    )
    [winner] = [r for r in results if isinstance(r, StageTransition)]
    [loser] = errors_of(results)
    assert isinstance(loser, PipelineError), loser
    with tenant_scope(org):
        current = fresh(lead)
        assert moves(lead) == [(LeadStage.MQL, winner.to_stage)]
        assert current.stage == winner.to_stage
        if winner.to_stage == LeadStage.SAL:
            # The rep's reject came second: a SAL lead cannot be rejected.
            assert str(loser) == "Only a lead waiting to be accepted can be rejected."
            assert Assignment.objects.get(lead=lead, is_current=True).accepted_at is not None
        else:
            assert winner.to_stage == LeadStage.RECYCLED
            # Recycled releases the rep; the admin's accept found no one to accept for.
            assert current.owner_id is None
            assert not Assignment.objects.filter(lead=lead, is_current=True).exists()
            assert str(loser) == "Assign the lead to a rep before accepting it."
