"""The transition table and the one service that changes a stage."""

from __future__ import annotations

import pytest

from leadflow.core import hooks
from leadflow.core.tenancy import tenant_scope
from leads.models import Lead, LeadStage
from pipeline.errors import ReasonRequired, TransitionNotAllowed
from pipeline.models import StageTransition
from pipeline.services import stage_transition, stages_transition_many
from pipeline.stages import allowed_targets, check_move
from tests.factories import LeadFactory
from tests.pipeline.support import fresh, history, pipeline_only  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def calls(monkeypatch):
    seen = []
    monkeypatch.setattr(hooks.stage_changed, "overridden", [lambda *args: seen.append(args)])
    return seen


@pytest.mark.parametrize(
    ("src", "dst", "role"),
    [
        ("new", "won", "admin"),  # no shortcut to a closed deal
        ("new", "sal", "sales_rep"),  # a rep only sees leads once they are MQLs
        ("sal", "opportunity", "admin"),  # an opportunity needs an SQL (BANT) first
        ("won", "lost", "admin"),
        ("new", "mql", "sales_rep"),  # marketing hands over, not sales
        ("mql", "sal", "marketer"),  # only sales accepts
        ("opportunity", "won", "marketer"),
    ],
)
def test_forbidden_moves_are_refused_with_a_clear_message(src, dst, role, org, make_member):
    actor = make_member(org, role)
    with pytest.raises(TransitionNotAllowed) as exc:
        check_move(src, dst, actor, "a reason")
    assert "cannot" in str(exc.value)


@pytest.mark.parametrize(
    ("src", "dst", "role", "needs_reason"),
    [
        ("new", "mql", "marketer", True),
        ("mql", "sal", "sales_rep", False),
        ("mql", "recycled", "sales_rep", True),
        ("sal", "sql", "sales_rep", False),
        ("sql", "recycled", "admin", True),
        ("opportunity", "won", "sales_rep", False),
        ("opportunity", "lost", "sales_rep", True),
        ("lost", "opportunity", "sales_rep", True),
        ("lost", "recycled", "marketer", True),
    ],
)
def test_allowed_moves_and_their_reasons(src, dst, role, needs_reason, org, make_member):
    actor = make_member(org, role)
    if needs_reason:
        with pytest.raises(ReasonRequired):
            check_move(src, dst, actor, "  ")
    check_move(src, dst, actor, "because")
    assert dst in allowed_targets(src, actor)


def test_automatic_rules_move_without_a_reason_but_only_where_the_table_says():
    check_move("new", "mql", None, "")
    check_move("mql", "recycled", None, "")
    with pytest.raises(TransitionNotAllowed, match="automatic rules"):
        check_move("mql", "sal", None, "")


def test_a_transition_writes_history_moves_the_stage_and_calls_the_hooks(
    org, other_org, make_member, calls
):
    marketer = make_member(org, "marketer")
    with tenant_scope(org):
        lead = LeadFactory(organization=org)
        t = stage_transition(
            lead=lead, to=LeadStage.MQL, actor=marketer, reason="Asked for pricing"
        )
        assert (t.from_stage, t.to_stage, t.actor, t.rule) == ("new", "mql", marketer, "manual")
        assert fresh(lead).stage == "mql" and fresh(lead).stage_changed_at == t.occurred_at
        assert calls == [(org.pk, [lead.pk], "new", "mql")]
    with tenant_scope(other_org):
        assert not StageTransition.objects.exists()


def test_a_refused_move_changes_nothing(org, make_member, calls):
    admin = make_member(org, "admin")
    with tenant_scope(org):
        lead = LeadFactory(organization=org)
        with pytest.raises(TransitionNotAllowed):
            stage_transition(lead=lead, to=LeadStage.WON, actor=admin)
        assert fresh(lead).stage == "new"
        assert history(lead) == [] and calls == []


def test_moving_back_keeps_both_moves(org, make_member):
    admin = make_member(org, "admin")
    with tenant_scope(org):
        lead = LeadFactory(organization=org, stage="sql", owner=admin)
        stage_transition(lead=lead, to=LeadStage.RECYCLED, actor=admin, reason="Budget frozen")
        stage_transition(lead=lead, to=LeadStage.MQL, actor=None, rule="score")
        assert history(lead) == [("sql", "recycled"), ("recycled", "mql")]
        # Leaving the pipeline releases the rep.
        assert fresh(lead).owner_id is None


@pytest.mark.parametrize("n", [3, 30])
def test_bulk_moves_are_set_based_and_skip_leads_that_cannot_move(
    org, other_org, n, calls, django_assert_num_queries
):
    with tenant_scope(other_org):
        foreign = LeadFactory(organization=other_org)
    with tenant_scope(org):
        movable = [LeadFactory(organization=org).pk for _ in range(n)]
        recycled = LeadFactory(organization=org, stage="recycled").pk
        stuck = LeadFactory(organization=org, stage="sal").pk
        discarded = LeadFactory(organization=org, discarded_at="2025-01-01T00:00Z").pk
        ids = [*movable, recycled, stuck, discarded, foreign.pk]
        # select-and-lock, insert transitions, update leads (SAVEPOINT + RELEASE)
        with django_assert_num_queries(5):
            moved = stages_transition_many(
                organization_id=org.pk, lead_ids=ids, to=LeadStage.MQL, rule="score"
            )
        assert sorted(moved) == sorted([*movable, recycled])
        assert Lead.objects.filter(stage="mql").count() == n + 1
        assert StageTransition.objects.count() == n + 1
        assert sorted(c[2] for c in calls) == ["new", "recycled"]
    with tenant_scope(other_org):
        assert fresh(foreign).stage == "new"
        assert not StageTransition.objects.exists()
