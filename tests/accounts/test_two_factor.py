"""Two-factor authentication (allauth.mfa): TOTP enrolment, log-in with a code or
a recovery code, and per-organization enforcement that stays in its organization."""

import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import (
    SECRET_SESSION_KEY,
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
)
from django.urls import reverse

from accounts.models import Organization, Role
from tests.factories import PASSWORD, MembershipFactory


def code_for(secret: str, *, offset: int = 0) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30 + offset))


def password_step(client, user):
    return client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})


def logged_in_as(client, user) -> bool:
    return client.session.get("_auth_user_id") == str(user.pk)


def with_totp(user) -> str:
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    RecoveryCodes.activate(user)
    return secret


@pytest.fixture
def member(org, make_member):
    return make_member(org, Role.MARKETER, email="member@acme.example")


@pytest.mark.django_db
def test_a_user_enrols_an_authenticator_app_and_gets_recovery_codes(client, member):
    assert password_step(client, member.user).status_code == 302
    # Changing sign-in methods asks for the password again (allauth's reauthentication).
    page = client.get(reverse("mfa_activate_totp"))
    assert page["Location"].startswith(reverse("account_reauthenticate"))
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    assert secret in page.content.decode()  # shown beside the QR code, for manual entry

    wrong = client.post(reverse("mfa_activate_totp"), {"code": "000000"})
    assert wrong.status_code == 200 and not Authenticator.objects.filter(user=member.user).exists()

    response = client.post(reverse("mfa_activate_totp"), {"code": code_for(secret)})
    assert response["Location"] == reverse("mfa_view_recovery_codes")
    types = set(Authenticator.objects.filter(user=member.user).values_list("type", flat=True))
    assert types == {Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES}
    codes = client.get(reverse("mfa_view_recovery_codes")).content.decode()
    recovery = Authenticator.objects.get(user=member.user, type=Authenticator.Type.RECOVERY_CODES)
    assert all(code in codes for code in RecoveryCodes(recovery).get_unused_codes())


@pytest.mark.django_db
def test_log_in_needs_the_authenticator_code_after_the_password(client, member):
    secret = with_totp(member.user)
    response = password_step(client, member.user)
    assert response["Location"] == reverse("mfa_authenticate")
    assert not logged_in_as(client, member.user)

    wrong = client.post(reverse("mfa_authenticate"), {"code": code_for(secret, offset=5)})
    assert wrong.status_code == 200 and not logged_in_as(client, member.user)

    response = client.post(reverse("mfa_authenticate"), {"code": code_for(secret)})
    assert response.status_code == 302
    assert logged_in_as(client, member.user)


@pytest.mark.django_db
def test_a_recovery_code_logs_in_once(client, member):
    with_totp(member.user)
    recovery = Authenticator.objects.get(user=member.user, type=Authenticator.Type.RECOVERY_CODES)
    code = RecoveryCodes(recovery).get_unused_codes()[0]

    password_step(client, member.user)
    client.post(reverse("mfa_authenticate"), {"code": code})
    assert logged_in_as(client, member.user)

    client.logout()
    password_step(client, member.user)
    client.post(reverse("mfa_authenticate"), {"code": code})  # spent
    assert not logged_in_as(client, member.user)


@pytest.mark.django_db
def test_admin_login_cannot_skip_the_second_factor(client, org):
    staff = MembershipFactory(
        organization=org, role=Role.ADMIN, user__is_staff=True, user__is_superuser=True
    ).user
    with_totp(staff)
    response = client.post(reverse("admin:login"), {"username": staff.email, "password": PASSWORD})
    assert not logged_in_as(client, staff)
    assert response["Location"].startswith(reverse("account_login"))


# --- Enforcement by an organization ----------------------------------------------


def org_page(org) -> str:
    return reverse("leads:lead_list", kwargs={"org_slug": org.slug})


@pytest.mark.django_db
def test_an_organization_can_require_two_factor(client_for, org, other_org, member):
    Organization.objects.filter(pk=org.pk).update(require_two_factor=True)
    client = client_for(member)
    response = client.get(org_page(org))
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")
    # htmx requests are sent there with a full-page redirect, not a swapped fragment.
    htmx = client.get(org_page(org), headers={"HX-Request": "true"})
    assert htmx["HX-Redirect"] == reverse("mfa_activate_totp")

    with_totp(member.user)
    assert client.get(org_page(org)).status_code == 200


@pytest.mark.django_db
def test_another_organizations_setting_does_not_affect_a_user(client_for, org, other_org, member):
    MembershipFactory(organization=other_org, user=member.user, role=Role.MARKETER)
    Organization.objects.filter(pk=other_org.pk).update(require_two_factor=True)
    client = client_for(member)
    assert client.get(org_page(org)).status_code == 200  # Acme does not require it
    assert client.get(org_page(other_org))["Location"] == reverse("mfa_activate_totp")


@pytest.mark.django_db
def test_only_an_admin_turns_the_requirement_on(client_for, org, other_org, admin, member):
    url = reverse("accounts:org_settings", kwargs={"org_slug": org.slug})
    data = {"name": "Acme", "timezone": "UTC", "require_two_factor": "on"}
    assert client_for(member).post(url, data).status_code == 403
    org.refresh_from_db()
    assert not org.require_two_factor

    assert client_for(admin).post(url, data).status_code == 302
    org.refresh_from_db()
    other_org.refresh_from_db()
    assert org.require_two_factor and not other_org.require_two_factor
