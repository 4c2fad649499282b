"""Writes on campaigns (lead sources with a cost)."""

from __future__ import annotations

from django.db import transaction

from accounts.models import Organization
from leads.models import Campaign


@transaction.atomic
def campaign_save(*, campaign: Campaign, organization: Organization) -> Campaign:
    """Save a new or edited campaign as the organization's (whatever the form held)."""
    campaign.organization = organization
    campaign.save()
    return campaign
