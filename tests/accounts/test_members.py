import pytest
from django.urls import reverse

from accounts.models import Membership, Role


def _url(name, org, membership):
    return reverse(name, kwargs={"org_slug": org.slug, "membership_id": membership.pk})


@pytest.mark.django_db
def test_members_page_lists_only_this_orgs_members(admin_client, org, marketer, other_admin):
    response = admin_client.get(reverse("accounts:members", kwargs={"org_slug": org.slug}))
    html = response.content.decode()
    assert marketer.user.email in html
    assert other_admin.user.email not in html


@pytest.mark.django_db
def test_admin_changes_role(admin_client, org, marketer):
    admin_client.post(_url("accounts:member_role", org, marketer), {"role": Role.SALES_REP})
    marketer.refresh_from_db()
    assert marketer.role == Role.SALES_REP


@pytest.mark.django_db
def test_last_admin_cannot_demote_or_deactivate_self(admin_client, org, admin):
    admin_client.post(_url("accounts:member_role", org, admin), {"role": Role.MARKETER})
    admin_client.post(_url("accounts:member_active", org, admin), {"active": "0"})
    admin.refresh_from_db()
    assert admin.role == Role.ADMIN and admin.is_active
    page = admin_client.get(reverse("accounts:members", kwargs={"org_slug": org.slug}))
    assert "at least one active admin" in page.content.decode()


@pytest.mark.django_db
def test_deactivated_member_loses_access_and_can_be_reactivated(
    admin_client, client_for, org, marketer
):
    marketer_client = client_for(marketer)
    home = reverse("accounts:org_home", kwargs={"org_slug": org.slug})
    assert marketer_client.get(home).status_code == 200
    admin_client.post(_url("accounts:member_active", org, marketer), {"active": "0"})
    assert marketer_client.get(home).status_code == 404
    admin_client.post(_url("accounts:member_active", org, marketer), {"active": "1"})
    assert marketer_client.get(home).status_code == 200


@pytest.mark.django_db
def test_invalid_role_is_rejected(admin_client, org, marketer):
    admin_client.post(_url("accounts:member_role", org, marketer), {"role": "superuser"})
    marketer.refresh_from_db()
    assert marketer.role == Role.MARKETER


@pytest.mark.django_db
def test_cannot_touch_another_orgs_membership(admin_client, org, other_admin):
    response = admin_client.post(_url("accounts:member_active", org, other_admin), {"active": "0"})
    assert response.status_code == 404
    assert Membership.objects.get(pk=other_admin.pk).is_active


@pytest.mark.django_db
def test_org_settings_update(admin_client, org):
    url = reverse("accounts:org_settings", kwargs={"org_slug": org.slug})
    response = admin_client.post(url, {"name": "Acme GmbH", "timezone": "Europe/Berlin"})
    assert response.status_code == 302
    org.refresh_from_db()
    assert (org.name, org.timezone) == ("Acme GmbH", "Europe/Berlin")
    bad = admin_client.post(url, {"name": "", "timezone": "Mars/Olympus"})
    assert bad.status_code == 200
    assert "This field is required" in bad.content.decode()
