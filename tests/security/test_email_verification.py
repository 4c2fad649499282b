"""Email verification: mandatory in production, and an accepted invitation link
counts as proof of the address it was sent to."""

import re
import subprocess
import sys

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import override_settings
from django.urls import reverse

from accounts.checks import check_email_verification
from accounts.models import Membership, Role
from tests.factories import InvitationFactory, UserFactory
from tests.security.conftest import ROOT
from tests.test_deploy import PROD_ENV

PASSWORD = "a-long-unique-passphrase-42"


def test_production_defaults_to_mandatory_verification(load_settings):
    prod = {k: v for k, v in PROD_ENV.items() if k != "DATABASE_URL"}
    assert load_settings(**prod)["ACCOUNT_EMAIL_VERIFICATION"] == "mandatory"
    assert load_settings()["ACCOUNT_EMAIL_VERIFICATION"] == "none"  # quick start (DEBUG on)


@pytest.mark.parametrize(
    ("debug", "verification", "warns"),
    [
        (False, "none", True),
        (False, "optional", True),
        (False, "mandatory", False),
        (True, "none", False),
    ],
)
def test_system_check_warns_when_production_trusts_unconfirmed_addresses(
    debug, verification, warns
):
    with override_settings(DEBUG=debug, ACCOUNT_EMAIL_VERIFICATION=verification):
        ids = [message.id for message in check_email_verification(None)]
    assert ids == (["accounts.W001"] if warns else [])


def test_check_deploy_fails_on_unverified_email_in_production():
    env = {"PATH": "/usr/bin:/bin", **PROD_ENV, "ACCOUNT_EMAIL_VERIFICATION": "none"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "accounts.W001" in result.stderr


def _invitation_path(invitation) -> str:
    from accounts.services import invitation_token

    return reverse("accounts:invitation", kwargs={"token": invitation_token(invitation)})


@pytest.mark.django_db
@override_settings(ACCOUNT_EMAIL_VERIFICATION="mandatory")
def test_signup_from_an_invitation_link_needs_no_confirmation(client, org, other_org):
    invitation = InvitationFactory(organization=org, email="joiner@acme.example")
    client.get(_invitation_path(invitation))
    response = client.post(
        reverse("account_signup"),
        {"email": "joiner@acme.example", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] != reverse("account_email_verification_sent")
    assert EmailAddress.objects.get(email="joiner@acme.example").verified
    assert not [m for m in mail.outbox if "onfirm" in m.subject]
    user = Membership.objects.get(organization=org).user
    assert int(client.session["_auth_user_id"]) == user.pk
    assert not Membership.objects.filter(organization=other_org).exists()


@pytest.mark.django_db
@override_settings(ACCOUNT_EMAIL_VERIFICATION="mandatory")
def test_signup_with_another_address_still_needs_confirmation(client, org):
    invitation = InvitationFactory(organization=org, email="joiner@acme.example")
    client.get(_invitation_path(invitation))
    response = client.post(
        reverse("account_signup"),
        {"email": "someone.else@acme.example", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response["Location"] == reverse("account_email_verification_sent")
    assert not EmailAddress.objects.get(email="someone.else@acme.example").verified
    assert "_auth_user_id" not in client.session
    assert re.search(r"onfirm", mail.outbox[-1].subject)


@pytest.mark.django_db
def test_accepting_an_invitation_verifies_the_address(client, org, other_org):
    user = UserFactory(email="joiner@acme.example")
    EmailAddress.objects.create(user=user, email=user.email, verified=False, primary=True)
    invitation = InvitationFactory(
        organization=org, email="joiner@acme.example", role=Role.MARKETER
    )
    client.force_login(user)
    assert client.post(_invitation_path(invitation)).status_code == 302
    assert EmailAddress.objects.get(user=user).verified
    assert Membership.objects.filter(user=user, organization=org).exists()
