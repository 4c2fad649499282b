"""What reps do with a lead: accept/reject, touches, BANT, opportunities."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from leads.models import Activity
from pipeline import services
from pipeline.errors import (
    NotYourLead,
    OpportunityInvalid,
    QualificationIncomplete,
    QualificationInvalid,
    RepUnavailable,
    TransitionNotAllowed,
)
from pipeline.models import Assignment, Opportunity, PipelinePolicy, StageTransition
from tests.factories import LeadFactory, TeamMemberFactory
from tests.pipeline.support import current_rep, fresh, history, mql_for, pipeline_only, rep  # noqa: F401

pytestmark = pytest.mark.django_db

FULL_BANT = {
    "budget_amount": "25,000",
    "budget_confirmed": True,
    "authority_role": "VP Sales",
    "decision_maker": "yes",
    "need": "Reps ignore web leads",
    "timing_window": "1_3m",
}


@pytest.fixture
def seller(org):
    return rep(org)


@pytest.fixture
def lead(org, seller):
    with tenant_scope(org):
        return mql_for(seller, company_name="Initech")


def test_accept_then_reject_is_refused_and_accept_stops_the_clock(org, seller, lead):
    with tenant_scope(org):
        services.lead_accept(lead=lead, actor=seller)
        assert fresh(lead).stage == "sal"
        assert Assignment.objects.get(lead=lead, is_current=True).accepted_at is not None
        with pytest.raises(TransitionNotAllowed, match="already been accepted"):
            services.lead_accept(lead=lead, actor=seller)
        with pytest.raises(TransitionNotAllowed, match="waiting to be accepted"):
            services.lead_reject(lead=lead, actor=seller, reason_code="bad_fit")


def test_reject_needs_a_reason_and_recycles_the_lead(org, seller, lead):
    with tenant_scope(org):
        with pytest.raises(TransitionNotAllowed, match="Pick why"):
            services.lead_reject(lead=lead, actor=seller, reason_code="")
        with pytest.raises(TransitionNotAllowed, match="Explain"):
            services.lead_reject(lead=lead, actor=seller, reason_code="other", reason=" ")
        services.lead_reject(lead=lead, actor=seller, reason_code="no_contact")
        t = StageTransition.objects.get(lead=lead)
        assert (t.to_stage, t.reason_code, t.reason) == (
            "recycled",
            "no_contact",
            "Could not reach them",
        )
        assert fresh(lead).owner_id is None and current_rep(lead) is None
        # History of who had it stays.
        assert Assignment.objects.filter(lead=lead, membership=seller).exists()


def test_a_rep_cannot_act_on_another_reps_lead(org, other_org, seller, lead):
    intruder = rep(org)
    with tenant_scope(org):
        for call in (
            lambda: services.lead_accept(lead=lead, actor=intruder),
            lambda: services.lead_touch(lead=lead, actor=intruder, kind="call", note=""),
            lambda: services.qualification_save(lead=lead, actor=intruder, data={"need": "x"}),
        ):
            with pytest.raises(NotYourLead):
                call()
        assert fresh(lead).stage == "mql" and not Activity.objects.exists()


def test_concurrent_accepts_one_wins(org, seller, lead, admin):
    """The second accept (here by an admin, on the rep's behalf) sees the first's stage."""
    stale_copy = fresh_copy = None
    with tenant_scope(org):
        stale_copy, fresh_copy = fresh(lead), fresh(lead)
        services.lead_accept(lead=fresh_copy, actor=seller)
        with pytest.raises(TransitionNotAllowed):
            services.lead_accept(lead=stale_copy, actor=admin)
        assert history(lead) == [("mql", "sal")]


def test_first_touch_is_recorded_once(org, seller, lead):
    with tenant_scope(org):
        with pytest.raises(TransitionNotAllowed, match="needs some text"):
            services.lead_touch(lead=lead, actor=seller, kind="note", note="")
        with pytest.raises(TransitionNotAllowed, match="call, a meeting or a note"):
            services.lead_touch(lead=lead, actor=seller, kind="page_view", note="x")
        earlier = timezone.now() - timedelta(minutes=3)
        services.lead_touch(
            lead=lead, actor=seller, kind="call", note="Left voicemail", occurred_at=earlier
        )
        services.lead_touch(lead=lead, actor=seller, kind="meeting", note="Demo")
        assignment = Assignment.objects.get(lead=lead, is_current=True)
        assert assignment.first_touched_at == earlier
        assert Activity.objects.filter(lead=lead).count() == 2
        assert fresh(lead).last_activity_at is not None


@pytest.mark.parametrize(
    ("required", "data", "missing"),
    [
        (["budget", "authority", "need", "timing"], {"need": "pain"}, "Budget, Authority, Timing"),
        (["need"], {"need": "pain"}, None),
        (["budget", "timing"], {"budget_amount": "0", "timing_window": "unknown"}, "Timing"),
        (["timing"], {"timing_date": "2030-01-31"}, None),
        ([], {}, None),
    ],
)
def test_sql_requires_the_orgs_bant_subset(org, seller, lead, required, data, missing):
    with tenant_scope(org):
        policy = services.policy_get(organization_id=org.pk)
        policy.bant_required = required
        services.policy_save(policy=policy)
        services.lead_accept(lead=lead, actor=seller)
        if data:
            services.qualification_save(lead=lead, actor=seller, data=data)
        if missing:
            with pytest.raises(QualificationIncomplete, match=f"missing: {missing}"):
                services.lead_qualify(lead=lead, actor=seller)
            assert fresh(lead).stage == "sal"
        else:
            services.lead_qualify(lead=lead, actor=seller)
            assert fresh(lead).stage == "sql"


def test_sql_cannot_be_skipped(org, seller, lead):
    with tenant_scope(org):
        services.qualification_save(lead=lead, actor=seller, data=FULL_BANT)
        with pytest.raises(TransitionNotAllowed, match="MQL to Sales qualified"):
            services.lead_qualify(lead=lead, actor=seller)
        with pytest.raises(TransitionNotAllowed):
            services.opportunity_open(lead=lead, actor=seller, amount=100)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"budget_amount": "-5"}, "between 0"),
        ({"budget_amount": "lots"}, "must be a number"),
        ({"budget_amount": "5", "budget_currency": "dollars"}, "three-letter"),
        ({"timing_window": "someday"}, "purchase window"),
        ({"timing_date": "next week"}, "YYYY-MM-DD"),
        ({"decision_maker": "maybe"}, "yes, no or unknown"),
        ({"colour": "blue"}, "Unknown qualification field"),
    ],
)
def test_bad_bant_values_are_refused_and_nothing_is_stored(org, seller, lead, data, message):
    with tenant_scope(org):
        with pytest.raises(QualificationInvalid, match=message):
            services.qualification_save(lead=lead, actor=seller, data=data)
        assert not hasattr(fresh(lead), "qualification") or fresh(lead).qualification is None


def test_budget_is_parsed_with_the_policy_currency(org, seller, lead):
    with tenant_scope(org):
        PipelinePolicy.objects.create(organization=org, default_currency="EUR")
        q = services.qualification_save(lead=lead, actor=seller, data=FULL_BANT)
        assert (q.budget_amount, q.budget_currency, q.decision_maker) == (
            Decimal("25000.00"),
            "EUR",
            True,
        )
        assert q.missing(["budget", "authority", "need", "timing"]) == []


def _to_sql(lead, actor):
    services.lead_accept(lead=lead, actor=actor)
    services.qualification_save(lead=lead, actor=actor, data=FULL_BANT)
    services.lead_qualify(lead=lead, actor=actor)


def test_opportunity_won_lost_and_reopened(org, other_org, seller, lead):
    with tenant_scope(org):
        _to_sql(lead, seller)
        with pytest.raises(OpportunityInvalid, match="above zero"):
            services.opportunity_open(lead=lead, actor=seller, amount="0")
        assert fresh(lead).stage == "sql"
        opp = services.opportunity_open(
            lead=lead, actor=seller, amount="48000", expected_close_date="2030-03-01"
        )
        assert (opp.name, opp.currency, opp.owner_id, opp.status) == (
            "Initech deal",
            "USD",
            seller.pk,
            "open",
        )
        services.opportunity_update(
            opportunity=opp, actor=seller, probability=60, next_step="Proposal"
        )
        with pytest.raises(OpportunityInvalid, match="between 0 and 100"):
            services.opportunity_update(opportunity=opp, actor=seller, probability=140)
        with pytest.raises(TransitionNotAllowed, match="reason"):
            services.opportunity_close(opportunity=opp, actor=seller, won=False)
        services.opportunity_close(
            opportunity=opp, actor=seller, won=False, reason="Went with a rival"
        )
        opp.refresh_from_db()
        assert (opp.status, opp.probability, opp.close_reason) == ("lost", 0, "Went with a rival")
        with pytest.raises(OpportunityInvalid, match="closed"):
            services.opportunity_update(opportunity=opp, actor=seller, amount=1)
        services.lead_reopen(lead=lead, actor=seller, reason="They called back")
        opp.refresh_from_db()
        assert opp.status == "open" and opp.closed_at is None
        services.opportunity_close(opportunity=opp, actor=seller, won=True)
        assert fresh(lead).stage == "won"
        assert history(lead)[-4:] == [
            ("sql", "opportunity"),
            ("opportunity", "lost"),
            ("lost", "opportunity"),
            ("opportunity", "won"),
        ]
    with tenant_scope(other_org):
        assert not Opportunity.objects.exists()


def test_closing_in_the_future_is_refused(org, seller, lead):
    with tenant_scope(org):
        _to_sql(lead, seller)
        opp = services.opportunity_open(lead=lead, actor=seller, amount=10)
        with pytest.raises(OpportunityInvalid, match="future"):
            services.opportunity_close(
                opportunity=opp,
                actor=seller,
                won=True,
                closed_at=timezone.now() + timedelta(days=2),
            )


def test_manual_reassignment_respects_away_and_capacity(org, seller, lead, marketer):
    other = TeamMemberFactory(team__organization=org, capacity=1)
    with tenant_scope(org):
        with pytest.raises(TransitionNotAllowed):
            services.lead_assign(lead=lead, membership=other.membership, actor=seller)
        mql_for(other.membership)  # now at capacity
        with pytest.raises(RepUnavailable, match="at capacity"):
            services.lead_assign(lead=lead, membership=other.membership, actor=marketer)
        a = services.lead_assign(
            lead=lead,
            membership=other.membership,
            actor=marketer,
            reason="Speaks German",
            override_capacity=True,
        )
        assert a.method == "manual" and "Speaks German" in a.reason
        assert current_rep(lead) == other.membership_id == fresh(lead).owner_id
        assert Assignment.objects.filter(lead=lead).count() == 2
        services.team_member_set_away(member=other, away=True)
        waiting = mql_for(seller)
        with pytest.raises(RepUnavailable, match="away"):
            services.lead_assign(lead=waiting, membership=other.membership, actor=marketer)
        assert current_rep(waiting) == seller.pk


def test_manual_mql_needs_a_marketer_and_a_reason(org, seller, marketer):
    with tenant_scope(org):
        lead = LeadFactory(organization=org)
        with pytest.raises(TransitionNotAllowed):
            services.lead_mark_mql_manual(lead=lead, actor=seller, reason="x")
        with pytest.raises(TransitionNotAllowed, match="reason"):
            services.lead_mark_mql_manual(lead=lead, actor=marketer, reason="")
        services.lead_mark_mql_manual(lead=lead, actor=marketer, reason="Met at the booth")
        assert (fresh(lead).stage, fresh(lead).mql_source) == ("mql", "manual")
