"""The lead list keeps its controls (filter form, bulk bar) and its rows' owner
and campaign names per organization (leads.controls, leads.selectors.list_labels):
a second view lists no members, campaigns or lists, and every change of what
they show is on the next view, in its own organization only."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Membership
from leadflow.core.tenancy import tenant_scope
from leads.models import Campaign
from nurture.models import NurtureList
from tests import factories as f

pytestmark = pytest.mark.django_db

CHOICE_TABLES = ("leads_campaign", "nurture_nurturelist", "accounts_membership")


def _view(client, org, query: str = "") -> tuple[str, list[str]]:
    with CaptureQueriesContext(connection) as sql:
        response = client.get(reverse("leads:lead_list", args=[org.slug]) + query)
    assert response.status_code == 200
    return response.content.decode(), [q["sql"] for q in sql.captured_queries]


def _without_token(html: str) -> str:
    return re.sub(r'(csrfmiddlewaretoken" value="|X-CSRFToken": ")[^"]+', r"\1", html)


@pytest.fixture
def listed(org, admin, sales_rep):
    with tenant_scope(org):
        campaign = f.CampaignFactory(organization=org, name="Spring webinar")
        f.NurtureListFactory(organization=org, name="Newsletter")
        f.LeadFactory(organization=org, owner=sales_rep, first_campaign=campaign)
    return campaign


def test_a_second_view_lists_no_members_campaigns_or_lists(org, admin, listed, client_for):
    client = client_for(admin)
    first, _ = _view(client, org)
    second, queries = _view(client, org)
    assert "Spring webinar" in second and "Newsletter" in second
    assert _without_token(second) == _without_token(first)
    # The layout reads the signed-in person's own seats; nothing lists the organization's.
    listing = [
        q
        for q in queries
        if any(t in q for t in CHOICE_TABLES) and '"accounts_membership"."user_id" =' not in q
    ]
    assert listing == []


def _rename_campaign(org, campaign, **_):
    campaign.name = "Autumn summit"
    campaign.save()
    return "Autumn summit", "Spring webinar"


def _add_campaign(org, **_):
    f.CampaignFactory(organization=org, name="Autumn summit")
    return "Autumn summit", None


def _delete_campaign(org, campaign, **_):
    Campaign.objects.filter(pk=campaign.pk).first().delete()
    return None, "Spring webinar"


def _add_member(org, **_):
    f.MembershipFactory(organization=org, role="sales_rep", user__full_name="Nadia Newhire")
    return "Nadia Newhire", None


def _rename_person(org, rep, **_):
    rep.user.full_name = "Renamed Rep"
    rep.user.save()
    return "Renamed Rep", None


def _deactivate_member(org, rep, **_):
    name = rep.user.display_name
    rep.is_active = False
    rep.save()
    return None, f">{name}</option>"


def _rename_list(org, **_):
    nurture_list = NurtureList.objects.get(name="Newsletter")
    nurture_list.name = "Customers"
    nurture_list.save()
    return "Customers", "Newsletter"


CHANGES = {
    "campaign renamed": _rename_campaign,
    "campaign added": _add_campaign,
    "campaign deleted": _delete_campaign,
    "member added": _add_member,
    "person renamed": _rename_person,
    "member left": _deactivate_member,
    "list renamed": _rename_list,
}


@pytest.mark.parametrize("change", CHANGES)
def test_every_change_of_the_choices_is_on_the_next_view(
    change, org, other_org, admin, sales_rep, other_admin, listed, client_for
):
    client, other_client = client_for(admin), client_for(other_admin)
    _view(client, org), _view(other_client, other_org)  # both kept
    with tenant_scope(org):
        shown, gone = CHANGES[change](org, campaign=listed, rep=sales_rep)
    html, _ = _view(client, org)
    if shown:
        assert shown in html
    if gone:
        assert gone not in html
    other, _ = _view(other_client, other_org)
    assert (shown or "Spring webinar") not in other  # never in the other tenant's list


def test_a_person_signing_in_forgets_nothing(org, admin, listed, client_for):
    client = client_for(admin)
    _view(client, org)
    admin.user.save(update_fields=["last_login"])
    _, queries = _view(client, org)
    assert not [q for q in queries if "leads_campaign" in q]


def test_the_filter_form_shows_each_querys_own_values(org, admin, listed, client_for):
    client = client_for(admin)
    first, _ = _view(client, org, "?q=alpha")
    second, _ = _view(client, org, "?q=beta")
    assert 'value="alpha"' in first and 'value="beta"' in second
    assert 'value="alpha"' not in second


def test_each_role_keeps_its_own_controls(org, admin, sales_rep, listed, client_for):
    admin_html, _ = _view(client_for(admin), org)
    rep_html, _ = _view(client_for(sales_rep), org)
    assert "bulk-bar" in admin_html
    assert "bulk-bar" not in rep_html  # a rep may not edit in bulk, even once the admin's is kept


def test_rows_name_owners_and_campaigns_even_when_kept_names_lack_them(
    org, admin, listed, client_for
):
    client = client_for(admin)
    _view(client, org)  # names kept
    with tenant_scope(org):
        seat = Membership(
            organization=org, user=f.UserFactory(full_name="Late Joiner"), role="sales_rep"
        )
        Membership.objects.bulk_create([seat])  # bypasses the signals, like a data migration
        seat = Membership.objects.get(user__full_name="Late Joiner")
        f.LeadFactory(organization=org, owner=seat, email="late@example.com")
    html, _ = _view(client, org)
    assert "Late Joiner" in html


def test_a_cache_outage_costs_the_queries_not_the_page(org, admin, listed, client_for, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get", down)
    monkeypatch.setattr(cache, "set", down)
    html, _ = _view(client_for(admin), org)
    assert "Spring webinar" in html and "Newsletter" in html
