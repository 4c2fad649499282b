"""SLA notice emails: lead names never break the subject; a failure is retried when
transient and listed on the team page when it is not."""

from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from leadflow.tenancy import tenant_scope
from leads.models import Lead
from pipeline import services
from pipeline.models import Notification
from tests.pipeline import test_sla

pytestmark = pytest.mark.django_db

routed = test_sla.routed  # the fixture: a lead routed to a rep of a team with a lead


def _breach(org, assignment, capture):
    with tenant_scope(org), capture(execute=True):
        services.sla_check(
            organization_id=org.pk, now=assignment.assigned_at + timedelta(minutes=6)
        )
    with tenant_scope(org):
        return {n.recipient_id: n for n in Notification.objects.all()}


def test_a_lead_name_with_a_line_break_does_not_break_the_subject(
    org,
    other_org,
    routed,
    django_capture_on_commit_callbacks,
):
    lead, assignment, _seats = routed
    with tenant_scope(org):
        Lead.objects.filter(pk=lead.pk).update(first_name="Ann\r\nBcc: all@victim.example")
    notices = _breach(org, assignment, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == len(notices) == 2
    assert all("\n" not in m.subject and "Ann Bcc:" in m.subject for m in mail.outbox)
    assert not any(n.email_error for n in notices.values())


def test_a_refused_address_is_listed_on_the_team_page_and_the_others_go_out(
    org, other_org, routed, admin_client, retrying, monkeypatch,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    _lead, assignment, seats = routed
    rep_email = seats[0].membership.user.email
    from django.core.mail import send_mail as real_send_mail

    def refuse_the_rep(**kwargs):
        if kwargs["recipient_list"] == [rep_email]:
            raise smtplib.SMTPRecipientsRefused({rep_email: (550, b"No such mailbox")})
        return real_send_mail(**kwargs)

    monkeypatch.setattr("pipeline.services.notifications.send_mail", refuse_the_rep)
    notices = _breach(org, assignment, django_capture_on_commit_callbacks)
    assert "550 No such mailbox" in notices[seats[0].membership_id].email_error
    assert notices[seats[1].membership_id].email_error == ""
    assert [m.to for m in mail.outbox] == [[seats[1].membership.user.email]]
    page = admin_client.get(reverse("pipeline:team", kwargs={"org_slug": org.slug}))
    html = page.content.decode()
    assert 'data-testid="failed-notices"' in html and "550 No such mailbox" in html


def test_a_transient_failure_is_retried_then_sent(
    org,
    other_org,
    routed,
    retrying,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    _lead, assignment, _seats = routed
    from django.core.mail import send_mail as real_send_mail

    calls = []

    def flaky(**kwargs):
        calls.append(kwargs["recipient_list"])
        if len(calls) <= 2:
            raise ConnectionResetError(104, "Connection reset by peer")
        return real_send_mail(**kwargs)

    monkeypatch.setattr("pipeline.services.notifications.send_mail", flaky)
    notices = _breach(org, assignment, django_capture_on_commit_callbacks)
    assert len(calls) == 4 and len(mail.outbox) == 2
    assert all(n.emailed_at and not n.email_error for n in notices.values())


def test_a_server_that_stays_down_ends_in_a_recorded_failure(
    org,
    other_org,
    routed,
    retrying,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    _lead, assignment, _seats = routed

    def down(**kwargs):
        raise smtplib.SMTPResponseException(421, b"Service not available")

    monkeypatch.setattr("pipeline.services.notifications.send_mail", down)
    notices = _breach(org, assignment, django_capture_on_commit_callbacks)
    # Both notices of the batch (the rep's and the team lead's) say why.
    assert len(notices) == 2
    assert all("421 Service not available" in n.email_error for n in notices.values())
    assert all(n.emailed_at for n in notices.values()) and not mail.outbox
