"""Sales dashboard: hand-computed rep numbers, SLA, capacity bubble, scoping, queries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from pipeline.models import OpportunityStatus, StageTransition
from reports.period import parse_report_query
from reports.selectors.sales import sales_dashboard
from tests.factories import (
    AssignmentFactory,
    LeadFactory,
    OpportunityFactory,
    TeamFactory,
    TeamMemberFactory,
)

UTC = dt.UTC
PERIOD = {"start": "2025-03-01", "end": "2025-03-07"}
NOW = dt.datetime(2025, 3, 8, 12, 0, tzinfo=UTC)


def at(day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(2025, 3, day, hour, minute, tzinfo=UTC)


def move(org, lead, to, when, actor=None, frm=""):
    StageTransition.objects.create(
        organization=org, lead=lead, from_stage=frm, to_stage=to, occurred_at=when, actor=actor
    )


def build_org(org, make_member, prefix="a"):
    """Two reps in one team; rep1 did the work, rep2 took over a breached lead."""
    team = TeamFactory(organization=org, name=f"EMEA {prefix}")
    seat1 = TeamMemberFactory(team=team, capacity=3, membership__user__email=f"{prefix}1@x.example")
    seat2 = TeamMemberFactory(team=team, capacity=2, membership__user__email=f"{prefix}2@x.example")
    rep1, rep2 = seat1.membership, seat2.membership
    with tenant_scope(org):
        # Met: touched 3 min after assignment (due 5), accepted within 4 h.
        l1 = LeadFactory(organization=org, stage="sal")
        AssignmentFactory(
            lead=l1,
            membership=rep1,
            assigned_at=at(2),
            first_touch_due_at=at(2, 10, 5),
            first_touched_at=at(2, 10, 3),
            accept_due_at=at(2, 14),
            accepted_at=at(2, 11),
        )
        # Missed: never touched, due long past; accepted but not worked.
        l2 = LeadFactory(organization=org, stage="sal")
        AssignmentFactory(
            lead=l2,
            membership=rep1,
            assigned_at=at(3, 9),
            first_touch_due_at=at(3, 9, 5),
            accept_due_at=at(3, 13),
            accepted_at=at(3, 10),
        )
        # Breached and reassigned to rep2 (no deadlines on the new assignment: not counted).
        l3 = LeadFactory(organization=org, stage="mql")
        AssignmentFactory(
            lead=l3,
            membership=rep1,
            assigned_at=at(4),
            first_touch_due_at=at(4, 10, 5),
            breached_at=at(4, 10, 6),
            is_current=False,
        )
        AssignmentFactory(lead=l3, membership=rep2, assigned_at=at(4, 11))
        # Assigned before the period, accepted inside it.
        l5 = LeadFactory(organization=org, stage="sal")
        AssignmentFactory(
            lead=l5,
            membership=rep1,
            assigned_at=dt.datetime(2025, 2, 20, tzinfo=UTC),
            accepted_at=at(1, 9),
            first_touched_at=at(1, 9),
        )
        for day in (2, 3, 4):
            move(org, LeadFactory(organization=org), "mql", at(day))
        move(org, l1, "sal", at(2, 11), actor=rep1, frm="mql")
        move(org, l1, "sql", at(5), actor=rep1, frm="sal")
        won = OpportunityFactory(
            lead=LeadFactory(organization=org, stage="won", owner=rep1),
            owner=rep1,
            amount=1000,
            status=OpportunityStatus.WON,
            closed_at=at(6),
        )
        OpportunityFactory(
            lead=LeadFactory(organization=org, stage="won", owner=rep1),
            owner=rep1,
            amount=5,
            status=OpportunityStatus.WON,
            closed_at=at(20),
        )
    return rep1, rep2, team, won


def dashboard(org, membership, params=PERIOD):
    with tenant_scope(org):
        query = parse_report_query(params, organization=org, membership=membership)
        return sales_dashboard(organization_id=org.pk, query=query, now=NOW)


def test_rep_numbers_match_hand_computed_values(org, other_org, admin, make_member):
    rep1, rep2, _team, _ = build_org(org, make_member)
    build_org(other_org, make_member, prefix="b")  # the same story elsewhere must not count
    dash = dashboard(org, admin)
    rows = {r.membership_id: r for r in dash.reps}
    r1, r2 = rows[rep1.pk], rows[rep2.pk]
    assert (r1.assigned, r1.accepted, r1.qualified, r1.won) == (3, 3, 1, 1)
    assert r1.won_amount == Decimal(1000)
    assert (r1.sla_met, r1.sla_missed) == (1, 2)
    assert r1.sla_compliance == pytest.approx(1 / 3)
    assert (r2.assigned, r2.sla_met, r2.sla_missed, r2.sla_compliance) == (1, 0, 0, None)
    # Open leads now: rep1 holds l1, l2, l5 (SAL) and 1 won (closed, not open) → 3 of 3.
    assert (r1.open_leads, r1.capacity, r1.load, r1.free_capacity) == (3, 3, 1.0, 0)
    assert (r2.open_leads, r2.free_capacity) == (1, 1)
    assert r1.not_worked == 1 and dash.not_worked_count == 1
    assert [(a.membership_id, a.accepted_at) for a in dash.not_worked] == [(rep1.pk, at(3))]
    assert [name for name, _ in dash.teams] == ["EMEA a"]
    assert dash.teams[0][1].assigned == 4
    # Admins sell too; nobody of the other org appears.
    assert {r.membership_id for r in dash.reps} == {rep1.pk, rep2.pk, admin.pk}


def test_bubble_when_arrivals_outpace_accepts(org, other_org, admin, make_member):
    build_org(org, make_member)
    cap = dashboard(org, admin).capacity
    # 3 MQL arrivals, 1 accept (the SAL move) in 7 days; 1 MQL waits, free capacity 1.
    assert (cap.arrivals, cap.accepted, cap.days) == (3, 1, 7)
    assert cap.bubble and cap.net_per_day == pytest.approx(2 / 7)
    assert (cap.waiting, cap.free_capacity, cap.over_capacity) == (1, 1, False)
    assert sum(d.arrivals for d in cap.flow) == 3 and len(cap.flow) == 7


def test_empty_period_shows_dashes_not_errors(org, other_org, admin, admin_client, make_member):
    build_org(org, make_member)
    empty = {"start": "2024-01-01", "end": "2024-01-07"}
    dash = dashboard(org, admin, empty)
    assert dash.totals.sla_compliance is None and not dash.capacity.bubble
    response = admin_client.get(reverse("reports:sales", kwargs={"org_slug": org.slug}), empty)
    assert response.status_code == 200
    assert "—" in response.content.decode() and b"bubble-ok" in response.content


def test_page_shows_the_bubble_and_exports_csv(org, other_org, admin_client, make_member):
    rep1, *_ = build_org(org, make_member)
    url = reverse("reports:sales", kwargs={"org_slug": org.slug})
    response = admin_client.get(url, PERIOD)
    assert response.status_code == 200
    assert b"bubble-warning" in response.content
    csv = admin_client.get(url, {**PERIOD, "export": "reps"})
    lines = csv.content.decode().splitlines()
    assert lines[0].startswith("Rep,Assigned,Accepted")
    name = rep1.user.display_name
    assert f"{name},3,3,100.00,1,1,1000.00 USD,1,2,33.33" in lines, lines


def test_a_sales_rep_sees_only_their_team(org, other_org, make_member, client_for):
    rep1, rep2, _team, _ = build_org(org, make_member)
    outsider = make_member(org, Role.SALES_REP, email="solo@x.example")
    with tenant_scope(org):
        AssignmentFactory(
            lead=LeadFactory(organization=org), membership=outsider, assigned_at=at(2)
        )
    assert {r.membership_id for r in dashboard(org, rep1).reps} == {rep1.pk, rep2.pk}
    assert [r.membership_id for r in dashboard(org, outsider).reps] == [outsider.pk]
    url = reverse("reports:sales", kwargs={"org_slug": org.slug})
    response = client_for(outsider).get(url, PERIOD)
    assert response.status_code == 200
    assert rep1.user.display_name.encode() not in response.content
    # The team filter offers a rep their own teams only (the outsider has none).
    assert [pk for pk, _ in response.context["choices"]["teams"]] == []
    own = client_for(rep1).get(url, PERIOD).context["choices"]["teams"]
    assert [pk for pk, _ in own] == [_team.pk]


def test_bad_input_and_foreign_filters_never_leak(org, other_org, admin_client, make_member):
    build_org(org, make_member)
    foreign_rep, _, foreign_team, _ = build_org(other_org, make_member, prefix="b")
    url = reverse("reports:sales", kwargs={"org_slug": org.slug})
    for params in (
        {"start": "2025-03-07", "end": "2025-03-01"},
        {"start": "2015-01-01", "end": "2025-01-01"},
        {"start": "yesterday"},
        {"team": str(foreign_team.pk)},
        {"source": "carrier-pigeon"},
    ):
        response = admin_client.get(url, params)
        assert response.status_code == 400, params
        assert foreign_rep.user.display_name.encode() not in response.content
        assert b"report-error" in response.content
    assert admin_client.get(url, {"team": "1x", "export": "reps"}).status_code == 400


def _grow(org, n):
    with tenant_scope(org):
        for _ in range(n):
            seat = TeamMemberFactory(team__organization=org)
            AssignmentFactory(
                lead=LeadFactory(organization=org, stage="sal"),
                membership=seat.membership,
                assigned_at=at(2),
                accepted_at=at(2, 11),
                first_touch_due_at=at(2, 10, 5),
            )
            move(org, LeadFactory(organization=org), "mql", at(3))


def test_query_count_does_not_grow_with_reps(
    org, other_org, admin_client, make_member, django_assert_num_queries
):
    url = reverse("reports:sales", kwargs={"org_slug": org.slug})
    _grow(org, 1)
    admin_client.get(url, PERIOD)  # warm caches (policy, settings)
    with django_assert_num_queries(27) as small:  # + calls before connect, both periods
        admin_client.get(url, PERIOD)
    _grow(org, 5)
    with django_assert_num_queries(len(small.captured_queries)):
        assert admin_client.get(url, PERIOD).status_code == 200


def test_won_amounts_keep_their_currency(org, other_org, admin, make_member):
    """A EUR win beside a USD one: two amounts, never one sum."""
    rep1, _rep2, _team, _ = build_org(org, make_member)
    with tenant_scope(org):
        OpportunityFactory(
            lead=LeadFactory(organization=org, stage="won", owner=rep1),
            owner=rep1,
            amount=48000,
            currency="EUR",
            status=OpportunityStatus.WON,
            closed_at=at(6),
        )
    dash = dashboard(org, admin)
    r1 = {r.membership_id: r for r in dash.reps}[rep1.pk]
    assert r1.won == 2 and r1.won_amount is None
    assert r1.won_amounts == {"USD": Decimal(1000), "EUR": Decimal(48000)}
    assert r1.won_amount_text == "48000.00 EUR; 1000.00 USD"
    assert dash.totals.won_amounts == {"USD": Decimal(1000), "EUR": Decimal(48000)}
