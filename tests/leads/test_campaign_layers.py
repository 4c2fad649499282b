"""Campaigns: the save is a service and cost per lead a selector (not view code),
each within the active organization."""

from __future__ import annotations

from decimal import Decimal

import pytest

from leadflow.core.tenancy import tenant_scope
from leads import selectors
from leads.models import Campaign
from leads.services.campaigns import campaign_save
from tests.factories import CampaignFactory, LeadFactory


@pytest.mark.django_db
def test_cost_per_lead_counts_live_first_touch_leads_of_this_organization(org, other_org):
    paid = CampaignFactory(organization=org, cost=900)
    empty = CampaignFactory(organization=org, cost=50)
    foreign = CampaignFactory(organization=other_org, cost=10)
    keep = LeadFactory(organization=org, first_campaign=paid)
    LeadFactory(organization=org, first_campaign=paid)
    LeadFactory(organization=org, first_campaign=paid, merged_into=keep)
    LeadFactory(organization=other_org, first_campaign=foreign)
    with tenant_scope(org):
        rows = {
            c.pk: (c.first_touch_leads, c.cpl) for c in selectors.campaign_list_with_cost_per_lead()
        }
    assert rows == {paid.pk: (2, Decimal(450)), empty.pk: (0, None)}


@pytest.mark.django_db
def test_campaign_save_files_the_campaign_under_the_given_organization(org, other_org):
    with tenant_scope(org):
        saved = campaign_save(campaign=Campaign(name="Fair", cost=10), organization=org)
        assert Campaign.objects.get(pk=saved.pk).organization_id == org.pk
    with tenant_scope(other_org):
        assert not Campaign.objects.exists()
