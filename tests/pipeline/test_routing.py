"""Routing MQLs to reps: rules, round robin with weights, capacity, away,
account owners, the default team; and MQL marking by score and by product usage."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from leads.services.ingest import Touch, lead_ingest_batch
from pipeline import services
from pipeline.errors import RoutingConfigError
from pipeline.models import Assignment, RoutingRule, StageTransition
from tests.factories import (
    ActivityFactory,
    CompanyFactory,
    LeadFactory,
    RoutingRuleFactory,
    ScoringRuleFactory,
)
from tests.pipeline.support import current_rep, fresh, mql_for, pipeline_only, rep, team_with  # noqa: F401

pytestmark = pytest.mark.django_db


def mqls(org, n, **kwargs) -> list[int]:
    return [LeadFactory(organization=org, stage="mql", **kwargs).pk for _ in range(n)]


def route(org, ids, **kwargs):
    return services.leads_route(organization_id=org.pk, lead_ids=ids, **kwargs)


def test_rules_apply_in_priority_order_then_the_default_team(org, other_org):
    with tenant_scope(org):
        emea, [emea_rep] = team_with(org, 1, name="EMEA")
        _default, [default_rep] = team_with(org, 1, name="Catch-all", is_default=True)
        germans_rep = rep(org)
        RoutingRuleFactory(
            organization=org,
            name="EMEA",
            priority=20,
            target_team=emea,
            conditions=[{"field": "country", "operator": "in", "value": "DE,FR"}],
        )
        RoutingRuleFactory(
            organization=org,
            name="Big DE",
            priority=10,
            target_team=None,
            target_rep=germans_rep,
            conditions=[
                {"field": "country", "operator": "eq", "value": "de"},
                {"field": "company_size", "operator": "gte", "value": 500},
            ],
        )
        big_de = LeadFactory(organization=org, stage="mql", country="DE", company_size=900)
        small_fr = LeadFactory(organization=org, stage="mql", country="FR", company_size=10)
        us = LeadFactory(organization=org, stage="mql", country="US")
        done = {a.lead_id: a for a in route(org, [big_de.pk, small_fr.pk, us.pk])}
        assert done[big_de.pk].membership_id == germans_rep.pk
        assert done[big_de.pk].reason == f"Matched rule Big DE → {germans_rep.user.display_name}"
        assert done[small_fr.pk].membership_id == emea_rep.membership_id
        assert done[small_fr.pk].reason == "Matched rule EMEA → round robin among 1 rep"
        assert (done[us.pk].membership_id, done[us.pk].method) == (
            default_rep.membership_id,
            "default_team",
        )
        assert fresh(us).owner_id == default_rep.membership_id
        # Routing twice does nothing: only unassigned leads are routed.
        assert route(org, [big_de.pk, small_fr.pk, us.pk]) == []
    with tenant_scope(other_org):
        assert not Assignment.objects.exists()


def test_score_and_grade_conditions(org):
    with tenant_scope(org):
        team, [_seat] = team_with(org, 1)
        RoutingRuleFactory(
            organization=org,
            target_team=team,
            conditions=[
                {"field": "score", "operator": "gte", "value": "80"},
                {"field": "grade", "operator": "in", "value": "a,b"},
            ],
        )
        hot = LeadFactory(organization=org, stage="mql", score=90, grade="A")
        cold = LeadFactory(organization=org, stage="mql", score=90, grade="C")
        assert [a.lead_id for a in route(org, [hot.pk, cold.pk])] == [hot.pk]
        assert fresh(cold).owner_id is None  # nobody to take it: waits unassigned


def test_round_robin_shares_leads_by_weight(org):
    with tenant_scope(org):
        _team, seats = team_with(org, 3, is_default=True)
        seats[2].weight = 2
        services.team_member_save(member=seats[2])
        got = Counter(a.membership_id for a in route(org, mqls(org, 40)))
        assert got == {
            seats[0].membership_id: 10,
            seats[1].membership_id: 10,
            seats[2].membership_id: 20,
        }
        # One at a time, equal weights take turns in order (least recently assigned first).
        seats[2].weight = 1
        services.team_member_save(member=seats[2])
        turns = [route(org, mqls(org, 1))[0].membership_id for _ in range(6)]
        assert turns[:3] == turns[3:] and len(set(turns)) == 3


def test_capacity_is_never_exceeded_and_least_loaded_breaks_ties(org):
    with tenant_scope(org):
        team, seats = team_with(org, 2)
        RoutingRuleFactory(organization=org, target_team=team, method="least_loaded", conditions=[])
        for seat in seats:
            seat.capacity = 3
            services.team_member_save(member=seat)
        mql_for(seats[0].membership)
        mql_for(seats[0].membership)
        first = route(org, mqls(org, 2))
        assert [a.membership_id for a in first] == [seats[1].membership_id] * 2
        more = route(org, mqls(org, 5))
        assert len(more) == 2  # one more each, then both are full
        for seat in seats:
            assert Lead.objects.filter(owner=seat.membership, stage="mql").count() == 3
        assert Lead.objects.filter(stage="mql", owner__isnull=True).count() == 3


def test_away_reps_are_skipped_and_not_flooded_when_back(org):
    with tenant_scope(org):
        _team, seats = team_with(org, 3, is_default=True)
        services.team_member_set_away(member=seats[0], away=True)
        got = Counter(a.membership_id for a in route(org, mqls(org, 20)))
        assert seats[0].membership_id not in got and sum(got.values()) == 20
        services.team_member_set_away(member=seats[0], away=False)
        # Back: one turn like everyone else, not the ten it missed.
        got = Counter(a.membership_id for a in route(org, mqls(org, 6)))
        assert got == {s.membership_id: 2 for s in seats}


def test_a_new_member_joins_the_rotation_without_a_flood(org):
    with tenant_scope(org):
        team, _seats = team_with(org, 2, is_default=True)
        route(org, mqls(org, 10))
        from tests.factories import TeamMemberFactory

        newcomer = services.team_member_save(
            member=TeamMemberFactory.build(team=team, organization=org, membership=rep(org))
        )
        got = Counter(a.membership_id for a in route(org, mqls(org, 6)))
        assert got[newcomer.membership_id] == 2


def test_account_owner_gets_new_leads_of_their_company(org):
    with tenant_scope(org):
        _team, seats = team_with(org, 2, is_default=True)
        company = CompanyFactory(organization=org, name="Initech")
        owner = seats[1].membership
        mql_for(owner, company=company)
        newcomer = LeadFactory(
            organization=org, stage="mql", company=company, company_name="Initech"
        )
        [a] = route(org, [newcomer.pk])
        assert (a.membership_id, a.method, a.reason) == (
            owner.pk,
            "account_owner",
            "Account owner of Initech",
        )
        services.team_member_set_away(member=seats[1], away=True)
        another = LeadFactory(organization=org, stage="mql", company=company)
        [b] = route(org, [another.pk])
        assert b.membership_id == seats[0].membership_id and b.method == "default_team"


@pytest.mark.parametrize("n", [4, 40])
def test_marking_and_routing_n_leads_is_a_constant_number_of_statements(
    org, other_org, n, django_assert_num_queries
):
    with tenant_scope(org):
        team, _seats = team_with(org, 3, is_default=True)
        RoutingRuleFactory(
            organization=org,
            target_team=team,
            conditions=[{"field": "country", "operator": "eq", "value": "DE"}],
        )
        company = CompanyFactory(organization=org)
        ids = [
            LeadFactory(organization=org, company=company if i % 3 == 0 else None).pk
            for i in range(n)
        ]
        services.policy_get(organization_id=org.pk)
        # mark: lock+read, insert, update; route: rules, leads, lock reps, seats, loads,
        # policy, timezone, previous, insert, 2 updates; notify the reps: lead names,
        # organization, keys already notified, preferences, insert; plus 8 savepoint
        # statements.
        with django_assert_num_queries(27):
            done = services.leads_mark_mql(organization_id=org.pk, lead_ids=ids, source="score")
        assert len(done) == n
        assert StageTransition.objects.filter(to_stage="mql", rule="score").count() == n
        assert (
            Lead.objects.filter(stage="mql", mql_source="score", owner__isnull=False).count() == n
        )


def test_crossing_the_score_threshold_makes_an_mql_and_routes_it_in_the_same_call(org, other_org):
    with tenant_scope(org):
        _team, [seat] = team_with(org, 1, is_default=True)
        ScoringRuleFactory(
            organization=org, field="title", operator="contains", value="vp", points=500
        )
        [result] = lead_ingest_batch(
            organization_id=org.pk,
            rows=[{"email": "vp@initech.example", "title": "VP Sales"}],
            touch=Touch(activity_kind="demo_request"),
        )
        lead = Lead.objects.get(pk=result.lead_id)
        assert (lead.stage, lead.mql_source, lead.owner_id) == ("mql", "score", seat.membership_id)
        a = Assignment.objects.get(lead=lead)
        # A demo request: first touch due within 5 minutes.
        assert a.first_touch_due_at - a.assigned_at == timedelta(minutes=5)
    with tenant_scope(other_org):
        assert not Lead.objects.exists()


def test_product_usage_makes_a_pql(org, other_org):
    with tenant_scope(org):
        team_with(org, 1, is_default=True)
        touch = Touch(activity_kind="product_event")
        rows = [{"email": "user@startup.example"}]
        for _i in range(4):
            lead_ingest_batch(organization_id=org.pk, rows=rows, touch=touch)
            lead = Lead.objects.get(email="user@startup.example")
            assert not lead.is_pql
        lead_ingest_batch(organization_id=org.pk, rows=rows, touch=touch)  # the fifth event
        lead = fresh(lead)
        assert (lead.is_pql, lead.stage, lead.mql_source) == (True, "mql", "pql")
        assert lead.owner_id is not None
        trial = LeadFactory(organization=org)
        ActivityFactory(lead=trial, kind="trial_signup", occurred_at=timezone.now())
        assert services.pql_evaluate(organization_id=org.pk, lead_ids=[trial.pk]) == [trial.pk]
    with tenant_scope(other_org):
        assert not Lead.objects.filter(is_pql=True).exists()


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ([{"field": "shoe_size", "operator": "eq", "value": "9"}], "Routing can test"),
        ([{"field": "country", "operator": "gt", "value": "5"}], "is text"),
        ([{"field": "company_size", "operator": "gte", "value": "many"}], "not a number"),
        ("country=DE", "a list"),
    ],
)
def test_bad_rules_are_refused(org, conditions, message):
    with tenant_scope(org):
        team, _ = team_with(org, 1)
        rule = RoutingRule(organization=org, name="Bad", target_team=team, conditions=conditions)
        with pytest.raises(RoutingConfigError, match=message):
            services.routing_rule_save(rule=rule)
        both = RoutingRule(organization=org, name="Two", target_team=team, target_rep=rep(org))
        with pytest.raises(RoutingConfigError, match="exactly one"):
            services.routing_rule_save(rule=both)
        assert not RoutingRule.objects.exists()
