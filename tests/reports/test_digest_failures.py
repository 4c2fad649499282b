"""A digest that cannot be sent is retried when the failure is transient and shown
to its member when it is not; a name with a line break never breaks the subject."""

from __future__ import annotations

import smtplib

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import Organization, Role
from leadflow.core.tenancy import tenant_scope
from reports.models import DigestSend
from reports.tasks import send_org_digests
from tests.mailfaults import FailingSend
from tests.reports.test_digest import subscribe

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscribers(
    org, other_org, admin, admin_client, make_member, client_for, other_admin, retrying
):
    rep = make_member(org, Role.SALES_REP, email="rep@acme.example")
    subscribe(admin_client, org)
    subscribe(client_for(rep), org)
    subscribe(client_for(other_admin), other_org)
    return admin, rep


def _run(org):
    """The organization's digest task as a worker runs it (retries included), forced
    to send now whatever the weekday."""
    return send_org_digests.apply(kwargs={"organization_id": org.pk, "force": True})


def _sends(org):
    with tenant_scope(org):
        return {s.membership_id: s for s in DigestSend.objects.all()}


def test_a_name_with_a_line_break_does_not_break_the_subject(org, other_org, subscribers):
    Organization.objects.filter(pk=org.pk).update(name="Acme\r\nBcc: all@victim.example")
    assert _run(org).result == 2
    assert len(mail.outbox) == 2
    assert all("\n" not in m.subject and m.subject.startswith("Acme Bcc") for m in mail.outbox)


def test_a_refused_member_is_recorded_and_told_the_others_get_theirs(
    org, other_org, subscribers, client_for, monkeypatch
):
    admin, rep = subscribers
    refused = smtplib.SMTPRecipientsRefused({rep.user.email: (550, b"Mailbox unavailable")})
    monkeypatch.setattr("reports.digest.send_mail", FailingSend(refused, only_to=rep.user.email))
    assert _run(org).result == 1
    assert [m.to for m in mail.outbox] == [[admin.user.email]]
    sends = _sends(org)
    assert sends[admin.pk].sent_at is not None and sends[admin.pk].failed_at is None
    assert sends[rep.pk].sent_at is None and "550 Mailbox unavailable" in sends[rep.pk].error
    page = client_for(rep).get(reverse("reports:sales", kwargs={"org_slug": org.slug}))
    html = page.content.decode()
    assert 'data-testid="digest-failed"' in html and "550 Mailbox unavailable" in html
    admin_page = client_for(admin).get(reverse("reports:sales", kwargs={"org_slug": org.slug}))
    assert 'data-testid="digest-failed"' not in admin_page.content.decode()
    # Not retried: the next hourly run of the same week leaves the refused member alone.
    assert _run(org).result == 0


def test_a_transient_failure_is_retried_then_sent(org, other_org, subscribers, monkeypatch):
    send = FailingSend(smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), times=2)
    monkeypatch.setattr("reports.digest.send_mail", send)
    _run(org)
    assert len(send.calls) == 4 and len(mail.outbox) == 2
    assert all(s.sent_at and not s.failed_at for s in _sends(org).values())


def test_a_server_that_stays_down_ends_in_a_recorded_failure(
    org, other_org, subscribers, monkeypatch
):
    down = FailingSend(smtplib.SMTPResponseException(421, b"Service not available"))
    monkeypatch.setattr("reports.digest.send_mail", down)
    _run(org)
    (failed,) = [s for s in _sends(org).values() if s.failed_at]
    assert "421 Service not available" in failed.error and failed.sent_at is None
