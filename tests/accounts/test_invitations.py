import re
import time
from unittest import mock

import pytest
from django.core import mail
from django.urls import reverse
from django_scopes import scopes_disabled

from accounts.models import Invitation, Membership, Role
from tests.factories import UserFactory


@pytest.fixture
def invite(admin_client, org, django_capture_on_commit_callbacks):
    """Post the invitation form as the admin; on-commit tasks run (eagerly)."""

    def post(email="new.rep@acme.example", role=Role.SALES_REP):
        with django_capture_on_commit_callbacks(execute=True):
            return admin_client.post(
                reverse("accounts:members", kwargs={"org_slug": org.slug}),
                {"email": email, "role": role},
            )

    return post


def _link_from_mail() -> str:
    body = mail.outbox[-1].body
    return re.search(r"http://\S+/invitations/(\S+)/", body).group(0)


@pytest.mark.django_db
def test_admin_invites_and_email_is_sent_by_task(invite, admin_client, org, other_org):
    response = invite()
    assert response.status_code == 302
    with scopes_disabled():
        invitation = Invitation.objects.get(email="new.rep@acme.example")
    assert invitation.organization == org
    assert invitation.sent_at is not None  # the Celery task ran (eagerly here)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new.rep@acme.example"]
    assert "Acme" in mail.outbox[0].subject


@pytest.mark.django_db
def test_accept_valid_invitation_creates_membership(invite, admin_client, org, client):
    invite()
    link = _link_from_mail()
    path = link.split("127.0.0.1:8000", 1)[1]
    invitee = UserFactory(email="new.rep@acme.example")
    client.force_login(invitee)
    assert "Join Acme" in client.get(path).content.decode()
    response = client.post(path)
    assert response.status_code == 302
    assert response["Location"] == f"/o/{org.slug}/"
    membership = Membership.objects.get(user=invitee, organization=org)
    assert membership.role == Role.SALES_REP
    # The link can't be used twice.
    again = client.post(path)
    assert again.status_code == 410


@pytest.mark.django_db
def test_expired_invitation_is_refused(invite, admin_client, org, client):
    invite()
    path = _link_from_mail().split("127.0.0.1:8000", 1)[1]
    invitee = UserFactory(email="new.rep@acme.example")
    client.force_login(invitee)
    eight_days_later = time.time() + 8 * 24 * 3600
    with mock.patch("django.core.signing.time.time", return_value=eight_days_later):
        response = client.post(path)
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert not Membership.objects.filter(user=invitee).exists()


@pytest.mark.django_db
def test_wrong_account_cannot_accept(invite, admin_client, org, client):
    invite()
    path = _link_from_mail().split("127.0.0.1:8000", 1)[1]
    intruder = UserFactory(email="someone.else@example.com")
    client.force_login(intruder)
    page = client.get(path)
    assert "This invitation is for new.rep@acme.example" in page.content.decode()
    response = client.post(path)
    assert response.status_code == 403
    assert not Membership.objects.filter(user=intruder).exists()


@pytest.mark.django_db
def test_tampered_token_is_refused(client):
    response = client.get(reverse("accounts:invitation", kwargs={"token": "not-a-real-token"}))
    assert response.status_code == 410
    assert "not valid" in response.content.decode()


@pytest.mark.django_db
def test_withdrawn_invitation_is_refused(invite, admin_client, org, client):
    invite()
    path = _link_from_mail().split("127.0.0.1:8000", 1)[1]
    with scopes_disabled():
        invitation = Invitation.objects.get()
    admin_client.post(
        reverse(
            "accounts:invitation_revoke",
            kwargs={"org_slug": org.slug, "invitation_id": invitation.pk},
        )
    )
    client.force_login(UserFactory(email="new.rep@acme.example"))
    assert client.post(path).status_code == 410


@pytest.mark.django_db
def test_signup_from_invitation_joins_instead_of_creating_org(invite, admin_client, org, client):
    invite(email="joiner@acme.example", role=Role.MARKETER)
    path = _link_from_mail().split("127.0.0.1:8000", 1)[1]
    client.get(path)  # anonymous visit remembers the invitation
    client.post(
        reverse("account_signup"),
        {
            "email": "joiner@acme.example",
            "password1": "a-long-unique-passphrase-42",
            "password2": "a-long-unique-passphrase-42",
        },
    )
    memberships = list(Membership.objects.filter(user__email="joiner@acme.example"))
    assert [(m.organization, m.role) for m in memberships] == [(org, Role.MARKETER)]


@pytest.mark.django_db
def test_inviting_an_existing_member_is_a_form_error(invite, admin_client, org, marketer):
    response = invite(email=marketer.user.email)
    assert response.status_code == 400
    assert "already a member" in response.content.decode()
    assert len(mail.outbox) == 0


@pytest.mark.django_db
def test_reinviting_resends_instead_of_duplicating(invite, admin_client, org):
    invite()
    invite(role=Role.MARKETER)
    with scopes_disabled():
        invitations = list(Invitation.objects.all())
    assert len(invitations) == 1
    assert invitations[0].role == Role.MARKETER
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_send_task_is_idempotent(invite, admin_client, org):
    from accounts.tasks import send_invitation

    invite()
    with scopes_disabled():
        invitation = Invitation.objects.get()
    send_invitation.apply(kwargs={"organization_id": org.pk, "invitation_id": invitation.pk})
    assert len(mail.outbox) == 1  # a duplicate delivery sent nothing
