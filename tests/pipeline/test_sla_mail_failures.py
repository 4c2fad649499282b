"""SLA notice emails: lead names never break the subject; a failure is retried when
transient and listed on the team page when it is not."""

from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from pipeline import services
from pipeline.models import Notification
from tests.mailfaults import FailingSend
from tests.pipeline import test_sla

pytestmark = pytest.mark.django_db

routed = test_sla.routed  # the fixture: a lead routed to a rep of a team with a lead


@pytest.fixture
def breach(org, other_org, routed, django_capture_on_commit_callbacks, monkeypatch):
    """Run the SLA check past the deadline of `routed` with `send` as the mailer; the
    notices by recipient."""

    def run(send=None):
        if send is not None:
            monkeypatch.setattr("pipeline.services.notifications.send_mail", send)
        _lead, assignment, _seats = routed
        with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
            services.sla_check(
                organization_id=org.pk, now=assignment.assigned_at + timedelta(minutes=6)
            )
        with tenant_scope(org):
            breaches = Notification.objects.filter(kind__in=("sla_breach", "sla_escalation"))
            return {n.recipient_id: n for n in breaches}

    return run


def test_a_lead_name_with_a_line_break_does_not_break_the_subject(org, routed, breach):
    lead, _assignment, _seats = routed
    with tenant_scope(org):
        Lead.objects.filter(pk=lead.pk).update(first_name="Ann\r\nBcc: all@victim.example")
    notices = breach()
    assert len(mail.outbox) == len(notices) == 2
    assert all("\n" not in m.subject and "Ann Bcc:" in m.subject for m in mail.outbox)
    assert not any(n.email_error for n in notices.values())


def test_a_refused_address_is_listed_on_the_team_page_and_the_others_go_out(
    org, routed, breach, admin_client, retrying
):
    _lead, assignment, seats = routed
    rep, team_lead = assignment.membership, seats[1].membership
    refused = smtplib.SMTPRecipientsRefused({rep.user.email: (550, b"No such mailbox")})
    notices = breach(FailingSend(refused, only_to=rep.user.email))
    assert "550 No such mailbox" in notices[rep.pk].email_error
    assert notices[team_lead.pk].email_error == ""
    assert [m.to for m in mail.outbox] == [[team_lead.user.email]]
    page = admin_client.get(reverse("pipeline:team", kwargs={"org_slug": org.slug}))
    html = page.content.decode()
    assert 'data-testid="failed-notices"' in html and "550 No such mailbox" in html


def test_a_transient_failure_is_retried_then_sent(breach, retrying):
    send = FailingSend(ConnectionResetError(104, "Connection reset by peer"), times=2)
    notices = breach(send)
    assert len(send.calls) == 4 and len(mail.outbox) == 2
    assert all(n.emailed_at and not n.email_error for n in notices.values())


def test_a_server_that_stays_down_ends_in_a_recorded_failure(breach, retrying):
    notices = breach(FailingSend(smtplib.SMTPResponseException(421, b"Service not available")))
    # Both notices of the batch (the rep's and the team lead's) say why.
    assert len(notices) == 2
    assert all("421 Service not available" in n.email_error for n in notices.values())
    assert all(n.emailed_at for n in notices.values()) and not mail.outbox
