"""Bulk "assign owner" takes an owner among the organization's members only."""

import pytest
from django.urls import reverse

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from tests.factories import LeadFactory, MembershipFactory


@pytest.fixture
def setup(org, other_org, admin, sales_rep, make_member):
    other_rep = make_member(other_org, Role.SALES_REP, email="rep@globex.example")
    gone = MembershipFactory(organization=org, role=Role.SALES_REP, is_active=False)
    leads = [LeadFactory(organization=org, owner=sales_rep) for _ in range(2)]
    foreign_lead = LeadFactory(organization=other_org, owner=other_rep)
    return {"other_rep": other_rep, "gone": gone, "leads": leads, "foreign": foreign_lead}


def _bulk(client, org, owner, leads):
    return client.post(
        reverse("leads:lead_bulk", kwargs={"org_slug": org.slug}),
        {"action": "assign_owner", "lead_ids": [lead.pk for lead in leads], "owner": owner},
        follow=True,
    )


BAD_OWNERS = ["abc", "999999", "other_org", "inactive", "1 OR 1=1", "", "-1", "1e3"]


@pytest.mark.django_db
def test_bad_owner_is_a_form_error_and_stores_nothing(admin_client, org, other_org, setup):
    for owner in BAD_OWNERS:  # one setup for all: users are slow to make
        value = {"other_org": setup["other_rep"].pk, "inactive": setup["gone"].pk}.get(owner, owner)
        response = _bulk(admin_client, org, value, setup["leads"])
        assert response.status_code == 200, owner
        assert response.redirect_chain[0][1] == 302
        page = response.content.decode()
        expected = "Choose who should own" if owner == "" else "Choose an owner among your"
        assert expected in page, owner
        with tenant_scope(org):
            owners = set(Lead.objects.values_list("owner_id", flat=True))
        assert owners == {setup["leads"][0].owner_id}, owner
    with tenant_scope(other_org):
        setup["foreign"].refresh_from_db()
    assert setup["foreign"].owner == setup["other_rep"]


@pytest.mark.django_db
def test_members_and_unassign_still_work(admin_client, org, setup, admin):
    _bulk(admin_client, org, admin.pk, setup["leads"][:1])
    _bulk(admin_client, org, "none", setup["leads"][1:])
    with tenant_scope(org):
        first, second = (Lead.objects.get(pk=lead.pk) for lead in setup["leads"])
    assert first.owner == admin and second.owner is None
