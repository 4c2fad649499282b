import pytest
from django.urls import reverse

from accounts.models import Membership, Organization, Role, User


@pytest.mark.django_db
def test_signup_creates_organization_and_admin_membership(client, other_org):
    response = client.post(
        reverse("account_signup"),
        {
            "email": "Founder@Startup.example",
            "password1": "a-long-unique-passphrase-42",
            "password2": "a-long-unique-passphrase-42",
            "full_name": "Fran Founder",
            "organization_name": "Startup Inc",
        },
    )
    user = User.objects.get(email__iexact="founder@startup.example")
    org = Organization.objects.get(name="Startup Inc")
    membership = Membership.objects.get(user=user)
    assert membership.organization == org
    assert membership.role == Role.ADMIN
    assert user.full_name == "Fran Founder"
    # Sign-up lands in the new workspace.
    assert response.status_code == 302
    follow = client.get(response["Location"], follow=True)
    assert follow.redirect_chain[-1][0] == f"/o/{org.slug}/"
    assert "Startup Inc" in follow.content.decode()


@pytest.mark.django_db
def test_signup_without_org_name_still_gets_a_workspace(client):
    client.post(
        reverse("account_signup"),
        {
            "email": "solo@example.com",
            "password1": "a-long-unique-passphrase-42",
            "password2": "a-long-unique-passphrase-42",
        },
    )
    membership = Membership.objects.get(user__email="solo@example.com")
    assert membership.role == Role.ADMIN
    assert membership.organization.slug.startswith("solo")


@pytest.mark.django_db
def test_duplicate_email_signup_is_refused(client, admin):
    response = client.post(
        reverse("account_signup"),
        {
            "email": admin.user.email.upper(),
            "password1": "a-long-unique-passphrase-42",
            "password2": "a-long-unique-passphrase-42",
            "organization_name": "Copycat",
        },
    )
    assert response.status_code == 200
    assert "already registered" in response.content.decode()
    assert not Organization.objects.filter(name="Copycat").exists()


@pytest.mark.django_db
def test_two_slugs_for_same_name_are_distinct(client):
    from accounts.services import organization_create
    from tests.factories import UserFactory

    a = organization_create(name="Same Name", owner=UserFactory())
    b = organization_create(name="Same Name", owner=UserFactory())
    assert a.slug != b.slug
