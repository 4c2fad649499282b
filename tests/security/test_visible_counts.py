"""Counts follow the same visibility as the lists they summarize."""

import pytest
from django.urls import reverse

from accounts.models import Role
from tests.factories import CompanyFactory, LeadFactory


@pytest.fixture
def company(org, other_org, sales_rep, make_member):
    other_rep = make_member(org, Role.SALES_REP)
    company = CompanyFactory(organization=org, name="Initech")
    LeadFactory(organization=org, company=company, owner=sales_rep)
    LeadFactory(organization=org, company=company, owner=other_rep)
    LeadFactory(organization=org, company=company, owner=None)
    gone = "2026-01-01T00:00Z"
    LeadFactory(organization=org, company=company, owner=sales_rep, discarded_at=gone)
    foreign = CompanyFactory(organization=other_org, name="Initech")
    LeadFactory(organization=other_org, company=foreign)
    return company


def _counts(client, org):
    response = client.get(reverse("leads:company_list", kwargs={"org_slug": org.slug}))
    assert response.status_code == 200
    return {c.pk: c.lead_count for c in response.context["page"]}


@pytest.mark.django_db
def test_company_lead_counts_follow_lead_visibility(client_for, org, admin, sales_rep, company):
    assert _counts(client_for(admin), org) == {company.pk: 3}
    # A rep sees one of the company's leads in the lists, so the count says one.
    assert _counts(client_for(sales_rep), org) == {company.pk: 1}
    detail = client_for(sales_rep).get(
        reverse("leads:company_detail", kwargs={"org_slug": org.slug, "company_id": company.pk})
    )
    assert len(detail.context["leads"]) == 1
