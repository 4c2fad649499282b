"""Names that go into mail headers are one line; invitation mails never fail silently."""

import smtplib
from unittest import mock

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse
from django_scopes import scopes_disabled

from accounts.forms import SignupExtraForm
from accounts.models import Invitation, Organization, Role
from accounts.services import organization_create
from leadflow.core.errors import LeadflowError
from tests.factories import UserFactory

EVIL_NAMES = [
    "Acme\r\nBcc: all@victim.example",
    "Acme\nInc",
    "Acme\rInc",
    "Acme\tInc",
    "Acme\u2028Inc",
]


def _members_url(org):
    return reverse("accounts:members", kwargs={"org_slug": org.slug})


@pytest.fixture
def invite(admin_client, org, django_capture_on_commit_callbacks):
    def post(email="new.rep@acme.example"):
        with django_capture_on_commit_callbacks(execute=True):
            return admin_client.post(_members_url(org), {"email": email, "role": Role.SALES_REP})

    return post


def _invitation(email="new.rep@acme.example"):
    with scopes_disabled():
        return Invitation.objects.get(email=email)


@pytest.mark.django_db
@pytest.mark.parametrize("name", EVIL_NAMES)
def test_organization_settings_reject_a_name_with_a_line_break(admin_client, org, name):
    url = reverse("accounts:org_settings", kwargs={"org_slug": org.slug})
    response = admin_client.post(url, {"name": name, "timezone": "UTC"})
    assert response.status_code == 200
    assert "without line breaks" in response.content.decode()
    org.refresh_from_db()
    assert org.name == "Acme"


@pytest.mark.django_db
def test_signup_and_services_reject_names_with_line_breaks(db):
    form = SignupExtraForm({"full_name": "Ann\r\nLee", "organization_name": "Acme\nInc"})
    assert not form.is_valid()
    assert set(form.errors) == {"full_name", "organization_name"}
    with pytest.raises(LeadflowError):
        organization_create(name="Acme\r\nBcc: x@y.example", owner=UserFactory())
    assert not Organization.objects.filter(name__contains="Bcc").exists()


@pytest.mark.django_db
def test_a_stored_name_with_a_line_break_still_gets_its_invitation_out(invite, org, other_org):
    # Saved before names were checked: the subject is made header-safe when sent.
    Organization.objects.filter(pk=org.pk).update(name="Acme\r\nBcc: all@victim.example")
    invite()
    assert _invitation().sent_at is not None
    (message,) = mail.outbox
    assert "\n" not in message.subject and "\r" not in message.subject
    assert "Acme Bcc: all@victim.example" in message.subject
    assert message.recipients() == ["new.rep@acme.example"]


@pytest.mark.django_db
def test_a_refused_address_is_recorded_and_shown_on_the_members_page(
    invite, admin_client, org, other_org, retrying, django_capture_on_commit_callbacks
):
    refused = smtplib.SMTPRecipientsRefused({"new.rep@acme.example": (550, b"No such user")})
    with mock.patch.object(EmailMultiAlternatives, "send", side_effect=refused) as send:
        invite()
    assert send.call_count == 1  # permanent: never retried
    invitation = _invitation()
    assert invitation.sent_at is None and invitation.send_failed_at is not None
    assert "550 No such user" in invitation.send_error
    page = admin_client.get(_members_url(org)).content.decode()
    assert 'data-testid="invitation-failed"' in page and "550 No such user" in page
    # Resend clears the failure and sends.
    with scopes_disabled():
        pk = invitation.pk
    resend = reverse(
        "accounts:invitation_resend", kwargs={"org_slug": org.slug, "invitation_id": pk}
    )
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(resend)
    invitation = _invitation()
    assert invitation.sent_at is not None and invitation.send_failed_at is None
    assert (
        'data-testid="invitation-failed"'
        not in admin_client.get(_members_url(org)).content.decode()
    )


@pytest.mark.django_db
def test_a_transient_failure_is_retried_until_it_goes_through(invite, org, other_org, retrying):
    flaky = [smtplib.SMTPServerDisconnected("gone"), ConnectionRefusedError(111, "refused"), 1]
    with mock.patch.object(EmailMultiAlternatives, "send", side_effect=flaky) as send:
        invite()
    assert send.call_count == 3
    invitation = _invitation()
    assert invitation.sent_at is not None and invitation.send_failed_at is None


@pytest.mark.django_db
def test_a_server_that_never_comes_back_ends_in_a_recorded_failure(
    invite, org, other_org, retrying
):
    busy = smtplib.SMTPResponseException(451, b"Try again later")
    with mock.patch.object(EmailMultiAlternatives, "send", side_effect=busy) as send:
        invite()
    assert send.call_count == 6  # the first try and five retries
    invitation = _invitation()
    assert invitation.sent_at is None
    assert "451 Try again later" in invitation.send_error
