"""Notifications: every kind fires once (however often its cause runs), emails
follow each member's preference (immediately, in a digest, off), breaches escalate
to the team leads, and the digest lists each pending notice exactly once."""

from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from pipeline import services
from pipeline.models import Notification, NotificationPreference
from pipeline.notification_tasks import notification_digests, send_notification_emails
from pipeline.services.notifications import (
    email_preferences,
    email_preferences_save,
    notification_digests_send,
    notify,
)
from tests.factories import ActivityFactory, AssignmentFactory, LeadFactory, OpportunityFactory
from tests.mailfaults import FailingSend
from tests.pipeline.support import pipeline_only, rep, team_with  # noqa: F401

pytestmark = pytest.mark.django_db


def kinds(membership) -> list[str]:
    return sorted(Notification.objects.filter(recipient=membership).values_list("kind", flat=True))


@pytest.fixture
def team(org, other_org):
    """A default team of two reps, the second one its team lead."""
    with tenant_scope(org):
        team, seats = team_with(org, 2, is_default=True)
        team.team_lead = seats[1].membership
        services.team_save(team=team)
        return team, [s.membership for s in seats]


def route_demo_request(org, **lead_kwargs):
    """A demo-request MQL routed now (first-touch SLA: 5 minutes)."""
    lead = LeadFactory(organization=org, stage="mql", **lead_kwargs)
    ActivityFactory(lead=lead, kind="demo_request", occurred_at=timezone.now())
    [assignment] = services.leads_route(organization_id=org.pk, lead_ids=[lead.pk])
    return lead, assignment


def test_routing_notifies_the_rep_once_by_bell_and_email_with_a_direct_link(
    org, other_org, team, django_capture_on_commit_callbacks, settings
):
    settings.SITE_URL = "https://leadflow.example"
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        lead, assignment = route_demo_request(org, first_name="Ann", last_name="Lee")
    with tenant_scope(org):
        [notice] = Notification.objects.all()
        assert (notice.recipient_id, notice.kind, notice.lead_id) == (
            assignment.membership_id,
            "assigned",
            lead.pk,
        )
        assert "Ann Lee" in notice.message and notice.link == f"/o/{org.slug}/leads/{lead.pk}/"
        assert notice.emailed_at and notice.email == "immediate"
        [email] = mail.outbox
        assert email.to == [assignment.membership.user.email] and "Ann Lee" in email.subject
        assert f"https://leadflow.example/o/{org.slug}/leads/{lead.pk}/" in email.body
        assert f"https://leadflow.example/o/{org.slug}/notifications/preferences/" in email.body
        # Routing the same lead again (a retried task) and the email task run again.
        services.leads_route(organization_id=org.pk, lead_ids=[lead.pk])
        send_notification_emails.delay(organization_id=org.pk, notification_ids=[notice.pk])
        assert Notification.objects.count() == 1 and len(mail.outbox) == 1
    with tenant_scope(other_org):
        assert not Notification.objects.exists()


def test_notify_with_the_same_key_writes_and_emails_once(
    org, other_org, django_capture_on_commit_callbacks
):
    with tenant_scope(org):
        member, opportunity = rep(org), OpportunityFactory(lead__organization=org)
        for _ in range(3):  # a task retried twice
            with django_capture_on_commit_callbacks(execute=True):
                notify(
                    recipient=member,
                    kind="task_due",
                    message="Call back Ann",
                    opportunity=opportunity,
                    key="task_due:7",
                )
        [notice] = Notification.objects.all()
        assert notice.link == f"/o/{org.slug}/pipeline/opportunities/{opportunity.pk}/"
        assert len(mail.outbox) == 1 and "Call back Ann" in mail.outbox[0].subject
        # Without a key every call is a new notice (nothing to tell them apart).
        notify(recipient=member, kind="task_due", message="Free text", link="/elsewhere/")
        notify(recipient=member, kind="task_due", message="Free text", link="/elsewhere/")
        assert Notification.objects.count() == 3


def test_a_manual_reassignment_tells_the_new_and_the_old_owner(
    org, other_org, team, admin, django_capture_on_commit_callbacks
):
    _team, (first, second) = team
    with tenant_scope(org):
        lead, assignment = route_demo_request(org, first_name="Bo")
        old = assignment.membership
        new = second if old == first else first
        with django_capture_on_commit_callbacks(execute=True):
            services.lead_assign(lead=lead, membership=new, actor=admin, reason="Speaks German")
        assert kinds(new)[-1:] == ["reassigned"]
        assert kinds(old) == ["assigned", "reassigned_away"]
        moved = Notification.objects.get(recipient=new, kind="reassigned")
        assert "Bo" in moved.message and "Speaks German" in moved.message
        # The old owner's default for "reassigned away" is the digest: no email now.
        assert [m.to for m in mail.outbox] == [[new.user.email]]
        assert Notification.objects.get(kind="reassigned_away").email == "digest"


def test_an_assignment_by_hand_of_an_unassigned_lead_is_a_new_assignment(org, other_org, admin):
    with tenant_scope(org):
        member = rep(org)
        lead = LeadFactory(organization=org, stage="mql")
        services.lead_assign(lead=lead, membership=member, actor=admin)
        assert kinds(member) == ["assigned"]


def test_sla_at_risk_warns_the_rep_once_at_80_percent_of_the_window(org, other_org, team):
    with tenant_scope(org):
        _lead, assignment = route_demo_request(org)
        t0 = assignment.assigned_at
        assert assignment.at_risk_at == t0 + timedelta(minutes=4)  # 80 % of 5 minutes
        check = services.sla_check
        assert check(organization_id=org.pk, now=t0 + timedelta(minutes=3))["at_risk"] == 0
        assert check(organization_id=org.pk, now=t0 + timedelta(minutes=4))["at_risk"] == 1
        assert check(organization_id=org.pk, now=t0 + timedelta(minutes=4.5))["at_risk"] == 0
        [warning] = Notification.objects.filter(kind="sla_at_risk")
        assert warning.recipient_id == assignment.membership_id and "within 1 min" in (
            warning.message
        )
        # The breach that follows is its own notice; no second warning.
        assert check(organization_id=org.pk, now=t0 + timedelta(minutes=6))["breached"] == 1
        assert Notification.objects.filter(kind="sla_at_risk").count() == 1


def test_work_done_in_time_is_never_at_risk(org, other_org, team):
    with tenant_scope(org):
        lead, assignment = route_demo_request(org)
        member = assignment.membership
        services.lead_accept(lead=lead, actor=member)
        services.lead_touch(lead=lead, actor=member, kind="call", note="Booked a demo")
        later = assignment.assigned_at + timedelta(minutes=4, seconds=30)
        assert services.sla_check(organization_id=org.pk, now=later)["at_risk"] == 0
        assert not Notification.objects.filter(kind="sla_at_risk").exists()


def test_a_breach_escalates_to_the_team_lead_never_to_the_rep_themselves(org, other_org, team):
    _team, (first, team_lead) = team
    with tenant_scope(org):
        # A lead the team lead holds: they get the breach, and no escalation to themselves.
        own = LeadFactory(organization=org, stage="mql")
        AssignmentFactory(
            lead=own,
            membership=team_lead,
            team=_team,
            accept_due_at=timezone.now() - timedelta(minutes=1),
        )
        # A lead assigned by hand (no team on the assignment): the rep's team's lead.
        by_hand = LeadFactory(organization=org, stage="mql")
        AssignmentFactory(
            lead=by_hand,
            membership=first,
            team=None,
            accept_due_at=timezone.now() - timedelta(minutes=1),
        )
        for _ in range(2):
            services.sla_check(organization_id=org.pk)
        assert kinds(team_lead) == ["sla_breach", "sla_escalation"]
        assert kinds(first) == ["sla_breach"]
        escalation = Notification.objects.get(kind="sla_escalation")
        assert escalation.lead_id == by_hand.pk
        assert first.user.display_name in escalation.message


def test_an_sla_reassignment_tells_both_reps(org, other_org, team):
    with tenant_scope(org):
        _lead, assignment = route_demo_request(org)
        t0 = assignment.assigned_at
        services.sla_check(organization_id=org.pk, now=t0 + timedelta(minutes=6))
        services.sla_check(organization_id=org.pk, now=t0 + timedelta(minutes=67))
        assert "reassigned_away" in kinds(assignment.membership)
        [moved] = Notification.objects.filter(kind="sla_reassigned")
        assert moved.recipient_id != assignment.membership_id
        assert "after an SLA breach" in moved.message


def prefer(members, **modes) -> None:
    for member in members:
        email_preferences_save(membership=member, modes=modes)


def test_preferences_off_keeps_the_bell_and_sends_no_email(
    org, other_org, team, django_capture_on_commit_callbacks
):
    _team, members = team
    with tenant_scope(org):
        prefer(members, assigned="off")
        with django_capture_on_commit_callbacks(execute=True):
            route_demo_request(org)
        [notice] = Notification.objects.all()
        assert notice.email == "off" and mail.outbox == []
        assert notification_digests_send() == 0 and mail.outbox == []


def test_digest_sends_one_email_listing_each_pending_notice_exactly_once(
    org, other_org, team, django_capture_on_commit_callbacks
):
    _team, members = team
    with tenant_scope(org):
        prefer(members, assigned="digest")
        with django_capture_on_commit_callbacks(execute=True):
            leads = [route_demo_request(org, first_name=f"Lead{i}")[0] for i in range(4)]
        assert mail.outbox == []  # nothing immediate
        by_rep = {m.pk: list(Notification.objects.filter(recipient=m)) for m in members}
        assert sorted(len(v) for v in by_rep.values()) == [2, 2]
        notification_digests.delay()  # beat → one job per organization
        assert len(mail.outbox) == 2
        for email in mail.outbox:
            [member] = [m for m in members if m.user.email in email.to]
            listed = [lead for lead in leads if f"{lead.first_name} " in email.body]
            assert len(listed) == 2 and "2 notifications" in email.subject
            assert all(f"/o/{org.slug}/leads/{lead.pk}/" in email.body for lead in listed)
            assert all(n.recipient_id == member.pk for n in by_rep[member.pk])
        # Next run: nothing pending, nothing sent again; a new notice goes in the next one.
        assert notification_digests_send() == 0
        notify(recipient=members[0], kind="assigned", message="One more", key="x")
        assert notification_digests_send() == 1 and "One more" in mail.outbox[-1].body
        assert "Lead" not in mail.outbox[-1].body
    with tenant_scope(other_org):
        assert notification_digests_send() == 0


def test_a_digest_that_fails_for_a_moment_is_sent_once_later(
    org, other_org, team, monkeypatch, retrying
):
    _team, members = team
    with tenant_scope(org):
        prefer(members[:1], assigned="digest")
        for i in range(2):
            notify(recipient=members[0], kind="assigned", message=f"Lead {i}", key=f"k{i}")
    send = FailingSend(smtplib.SMTPResponseException(421, b"Try later"), times=1)
    monkeypatch.setattr("pipeline.services.notifications.send_mail", send)
    notification_digests.delay()  # the first attempt fails, the task's retry sends
    assert len(send.calls) == 2
    [email] = mail.outbox
    assert "Lead 0" in email.body and "Lead 1" in email.body
    with tenant_scope(org):
        assert not Notification.objects.filter(emailed_at__isnull=True).exists()
        assert not Notification.objects.exclude(email_error="").exists()
        assert notification_digests_send() == 0


def test_preferences_default_and_refuse_unknown_values(org, other_org):
    with tenant_scope(org):
        member = rep(org)
        defaults = email_preferences(membership_id=member.pk)
        assert defaults["assigned"] == defaults["sla_breach"] == "immediate"
        assert defaults["reassigned_away"] == "digest"
        with pytest.raises(ValueError):
            email_preferences_save(membership=member, modes={"assigned": "hourly"})
        with pytest.raises(ValueError):
            email_preferences_save(membership=member, modes={"nope": "off"})
        # Whatever else is stored (an older or a broken value) reads as the default.
        NotificationPreference.objects.create(
            organization=org, membership=member, email={"assigned": "<b>", "task_due": "off"}
        )
        stored = email_preferences(membership_id=member.pk)
        assert stored["assigned"] == "immediate" and stored["task_due"] == "off"


def test_an_immediate_email_whose_task_was_lost_goes_out_with_the_next_digest_run(
    org, other_org, django_capture_on_commit_callbacks
):
    with tenant_scope(org):
        member = rep(org)
        # Written, but its task never ran (the broker was down when it was enqueued).
        lost = notify(recipient=member, kind="assigned", message="Lost one", key="lost")
        recent = notify(recipient=member, kind="assigned", message="Recent one", key="recent")
        Notification.objects.filter(pk=lost.pk).update(
            created_at=timezone.now() - timedelta(minutes=20)
        )
        assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        notification_digests.delay()
    assert [m.subject for m in mail.outbox] == ["[LeadFlow] Lost one"]
    with tenant_scope(org):
        assert Notification.objects.get(pk=recent.pk).emailed_at is None  # its task may run yet


def test_a_notice_belongs_to_its_recipients_organization_even_with_no_scope_open(
    org, other_org, django_capture_on_commit_callbacks
):
    """A management command or the demo seeds (scopes disabled) route leads too."""
    from django_scopes import scopes_disabled

    with tenant_scope(other_org):
        theirs = rep(other_org)
        lead = LeadFactory(organization=other_org)
    with scopes_disabled(), django_capture_on_commit_callbacks(execute=True):
        notice = notify(recipient=theirs, kind="assigned", message="Hello", lead=lead, key="k")
    assert notice.organization_id == other_org.pk
    assert notice.link == f"/o/{other_org.slug}/leads/{lead.pk}/"
    assert [m.to for m in mail.outbox] == [[theirs.user.email]]
    with tenant_scope(org):
        assert not Notification.objects.exists()
