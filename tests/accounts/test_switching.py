import pytest
from django.urls import reverse

from accounts.models import Role
from tests.factories import MembershipFactory


@pytest.mark.django_db
def test_user_in_two_orgs_switches_between_them(admin, org, other_org, client_for):
    MembershipFactory(organization=other_org, user=admin.user, role=Role.MARKETER)
    client = client_for(admin)
    page = client.get(reverse("accounts:org_home", kwargs={"org_slug": org.slug}))
    html = page.content.decode()
    # The switcher offers both organizations with the role held in each.
    assert f"/o/{other_org.slug}/" in html and "Globex" in html
    other = client.get(reverse("accounts:org_home", kwargs={"org_slug": other_org.slug}))
    assert other.status_code == 200
    assert other.context["current_membership"].role == Role.MARKETER
    # Members management is admin-only: not offered in Globex where they are a marketer.
    assert reverse("accounts:members", kwargs={"org_slug": other_org.slug}) not in (
        other.content.decode()
    )
    # Signing in again lands in the organization used last.
    assert client.get(reverse("accounts:home"))["Location"] == f"/o/{other_org.slug}/"


@pytest.mark.django_db
def test_user_without_org_is_sent_to_switcher(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    response = client.get(reverse("accounts:home"))
    assert response["Location"] == reverse("accounts:org_list")
    page = client.get(response["Location"])
    assert "not in any organization yet" in page.content.decode()


@pytest.mark.django_db
def test_create_second_organization(admin_client, admin):
    response = admin_client.post(
        reverse("accounts:org_create"), {"name": "Side Project", "timezone": "UTC"}
    )
    assert response.status_code == 302
    assert admin.user.memberships.count() == 2


@pytest.mark.django_db
def test_navigation_follows_role(client_for, org, sales_rep, admin):
    members_url = reverse("accounts:members", kwargs={"org_slug": org.slug})
    home = reverse("accounts:org_home", kwargs={"org_slug": org.slug})
    assert members_url in client_for(admin).get(home).content.decode()
    assert members_url not in client_for(sales_rep).get(home).content.decode()
