"""Speed-to-lead: due times from the policy, breach notices, the second window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from pipeline import services
from pipeline.models import Assignment, Notification, PipelinePolicy, StageTransition
from pipeline.sla import add_business_minutes
from tests.factories import ActivityFactory, LeadFactory
from tests.pipeline.support import current_rep, fresh, pipeline_only, team_with  # noqa: F401

pytestmark = pytest.mark.django_db


def test_business_hours_push_deadlines_into_the_next_working_day():
    policy = PipelinePolicy(business_hours_only=True)
    friday_late = datetime(2025, 3, 7, 16, 50, tzinfo=UTC)  # 17:50 in Berlin: closed
    due = add_business_minutes(friday_late, 60, policy, "Europe/Berlin")
    assert due == datetime(2025, 3, 10, 9, 0, tzinfo=UTC)  # Monday 10:00 Berlin
    thursday = datetime(2025, 3, 6, 15, 30, tzinfo=UTC)  # 16:30 Berlin: 30 min left today
    assert add_business_minutes(thursday, 60, policy, "Europe/Berlin") == datetime(
        2025, 3, 7, 8, 30, tzinfo=UTC
    )
    policy.business_hours_only = False
    assert add_business_minutes(
        friday_late, 60, policy, "Europe/Berlin"
    ) == friday_late + timedelta(hours=1)


@pytest.fixture
def routed(org):
    """A team with a lead (Ann) and two reps, and one demo-request MQL routed at t0."""
    with tenant_scope(org):
        team, seats = team_with(org, 2, is_default=True)
        team.team_lead = seats[1].membership
        services.team_save(team=team)
        lead = LeadFactory(organization=org, stage="mql", first_name="Ann", last_name="Lee")
        ActivityFactory(lead=lead, kind="demo_request", occurred_at=timezone.now())
        [assignment] = services.leads_route(organization_id=org.pk, lead_ids=[lead.pk])
        return lead, assignment, seats


def test_a_breach_notifies_the_rep_and_the_team_lead_once(
    org, other_org, routed, django_capture_on_commit_callbacks
):
    _lead, assignment, seats = routed
    t0 = assignment.assigned_at
    with tenant_scope(org):
        assert (
            services.sla_check(organization_id=org.pk, now=t0 + timedelta(minutes=4))["breached"]
            == 0
        )
        with django_capture_on_commit_callbacks(execute=True):
            result = services.sla_check(organization_id=org.pk, now=t0 + timedelta(minutes=6))
        assert result == {"at_risk": 0, "breached": 1, "reassigned": 0, "recycled": 0}
        breach_kinds = ("sla_breach", "sla_escalation")
        notices = Notification.objects.filter(kind__in=breach_kinds).order_by("recipient_id")
        assert {n.recipient_id for n in notices} == {
            assignment.membership_id,
            seats[1].membership_id,
        }
        assert all("Ann Lee was not" in n.message and n.emailed_at for n in notices)
        assert len(mail.outbox) == len(notices)
        # The same sweep again finds nothing new.
        assert (
            services.sla_check(organization_id=org.pk, now=t0 + timedelta(minutes=7))["breached"]
            == 0
        )
        assert Notification.objects.filter(kind__in=breach_kinds).count() == len(notices)
    with tenant_scope(other_org):
        assert not Notification.objects.exists()


def test_a_touch_in_time_is_no_breach(org, routed):
    lead, assignment, _seats = routed
    with tenant_scope(org):
        rep = assignment.membership
        services.lead_accept(lead=lead, actor=rep)
        services.lead_touch(lead=lead, actor=rep, kind="call", note="Booked a demo")
        later = timezone.now() + timedelta(days=2)
        assert services.sla_check(organization_id=org.pk, now=later)["breached"] == 0


def test_after_the_second_window_the_lead_goes_to_the_next_rep(org, routed):
    lead, assignment, _seats = routed
    t0 = assignment.assigned_at
    with tenant_scope(org):
        services.sla_check(organization_id=org.pk, now=t0 + timedelta(minutes=6))
        within = services.sla_check(organization_id=org.pk, now=t0 + timedelta(minutes=60))
        assert within["reassigned"] == 0
        result = services.sla_check(organization_id=org.pk, now=t0 + timedelta(minutes=67))
        assert result["reassigned"] == 1
        new = Assignment.objects.get(lead=lead, is_current=True)
        assert new.membership_id != assignment.membership_id
        assert new.method == "sla_reassign" and new.reason.startswith("SLA missed")
        assert fresh(lead).owner_id == new.membership_id and fresh(lead).stage == "mql"
        assert Notification.objects.filter(kind="sla_reassigned", recipient=new.membership).exists()


def test_with_recycle_policy_or_nobody_left_the_lead_goes_back_to_nurture(org, routed):
    lead, assignment, seats = routed
    t0 = assignment.assigned_at
    with tenant_scope(org):
        services.team_member_set_away(
            member=next(s for s in seats if s.membership_id != assignment.membership_id), away=True
        )
        services.sla_check(organization_id=org.pk, now=t0 + timedelta(minutes=6))
        result = services.sla_check(organization_id=org.pk, now=t0 + timedelta(minutes=70))
        assert result == {"at_risk": 0, "breached": 0, "reassigned": 0, "recycled": 1}
        lead = fresh(lead)
        assert (lead.stage, lead.owner_id, current_rep(lead)) == ("recycled", None, None)
        t = StageTransition.objects.get(lead=lead)
        assert (t.rule, t.reason_code, t.actor) == ("sla", "sla_missed", None)


def test_the_beat_task_fans_out_per_organization(org, other_org, routed):
    from pipeline.tasks import sla_sweep

    _lead, assignment, _seats = routed
    with tenant_scope(org):
        Assignment.objects.filter(pk=assignment.pk).update(
            first_touch_due_at=timezone.now() - timedelta(minutes=1)
        )
    assert sla_sweep() >= 2
    with tenant_scope(org):
        assert Assignment.objects.get(pk=assignment.pk).breached_at is not None
