"""Needs-review queue, possible duplicates, manual merge; companies and campaigns pages."""

import pytest
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from leads.models import Channel, FormSubmission, Quality
from tests.factories import (
    CampaignFactory,
    CompanyFactory,
    FormSubmissionFactory,
    LeadFactory,
)


def url(name, org, **kwargs):
    return reverse(f"leads:{name}", kwargs={"org_slug": org.slug, **kwargs})


@pytest.fixture
def flagged(org, other_org):
    LeadFactory(organization=other_org, quality=Quality.JUNK, email="theirs@x.com")
    return (
        LeadFactory(
            organization=org,
            quality=Quality.JUNK,
            email="junk@mailinator.com",
            quality_reasons=[
                {
                    "code": "email_disposable",
                    "field": "email",
                    "message": "Disposable email domain",
                    "severity": "junk",
                }
            ],
        ),
        LeadFactory(organization=org, quality=Quality.SUSPECT, email="info@initech.com"),
        LeadFactory(organization=org, quality=Quality.OK, email="fine@initech.com"),
    )


@pytest.mark.django_db
def test_review_queue_lists_flagged_leads_with_reasons(admin_client, org, flagged):
    response = admin_client.get(url("review_list", org))
    emails = {lead.email for lead in response.context["page"]}
    assert emails == {"junk@mailinator.com", "info@initech.com"}
    assert "Disposable email domain" in response.content.decode()
    assert response.context["counts"] == {"junk": "1", "suspect": "1", "ok": "1"}


@pytest.mark.django_db
def test_approve_and_discard(admin_client, org, flagged):
    junk, suspect, _ = flagged
    FormSubmissionFactory(form__organization=org, lead=junk)
    admin_client.post(url("lead_approve", org, lead_id=suspect.pk))
    admin_client.post(url("lead_discard", org, lead_id=junk.pk))
    with tenant_scope(org):
        suspect.refresh_from_db()
        junk.refresh_from_db()
        assert FormSubmission.objects.filter(lead=junk).count() == 1  # kept
    assert suspect.quality == Quality.OK and suspect.reviewed_at
    assert junk.discarded_at is not None
    remaining = admin_client.get(url("review_list", org)).context["page"]
    assert list(remaining) == []
    # A discarded lead is hidden from the lead list but still reachable.
    listed = {lead.pk for lead in admin_client.get(url("lead_list", org)).context["page"]}
    assert junk.pk not in listed
    assert admin_client.get(url("lead_detail", org, lead_id=junk.pk)).status_code == 200


@pytest.mark.django_db
def test_sales_rep_cannot_review(client_for, org, sales_rep, flagged):
    client = client_for(sales_rep)
    assert client.get(url("review_list", org)).status_code == 403
    assert client.post(url("lead_discard", org, lead_id=flagged[0].pk)).status_code == 403


@pytest.mark.django_db
def test_merge_across_tenants_is_404(admin_client, org, other_org):
    mine = LeadFactory(organization=org)
    theirs = LeadFactory(organization=other_org)
    response = admin_client.post(url("lead_merge", org, lead_id=mine.pk, other_lead_id=theirs.pk))
    assert response.status_code == 404
    with tenant_scope(other_org):
        theirs.refresh_from_db()
    assert theirs.merged_into is None


@pytest.mark.django_db
def test_company_pages(admin_client, org, other_org, django_assert_num_queries):
    company = CompanyFactory(organization=org, name="Initech")
    LeadFactory.create_batch(3, organization=org, company=company)
    CompanyFactory(organization=other_org, name="Globex Corp")
    with django_assert_num_queries(4) as first:  # one page: no count query
        html = admin_client.get(url("company_list", org)).content.decode()
    assert "Initech" in html and "Globex Corp" not in html
    CompanyFactory.create_batch(20, organization=org)
    with django_assert_num_queries(len(first.captured_queries)):
        admin_client.get(url("company_list", org))
    detail = admin_client.get(url("company_detail", org, company_id=company.pk))
    assert len(detail.context["leads"]) == 3


@pytest.mark.django_db
def test_campaign_crud_and_validation(admin_client, org, other_org):
    CampaignFactory(organization=other_org, name="Their campaign")
    response = admin_client.post(
        url("campaign_create", org),
        {
            "name": "Spring webinar",
            "channel": Channel.WEBINAR,
            "cost": "2500.00",
            "starts_on": "2026-03-01",
            "ends_on": "2026-03-31",
            "utm_campaign": "spring",
        },
    )
    assert response.status_code == 302
    dup = admin_client.post(
        url("campaign_create", org), {"name": "spring WEBINAR", "channel": "email", "cost": "1"}
    )
    assert dup.status_code == 400 and "already exists" in dup.content.decode()
    bad = admin_client.post(
        url("campaign_create", org),
        {
            "name": "X",
            "channel": "email",
            "cost": "-5",
            "starts_on": "2026-03-02",
            "ends_on": "2026-03-01",
        },
    )
    assert bad.status_code == 400
    assert "end date is before" in bad.content.decode()
    listing = admin_client.get(url("campaign_list", org)).content.decode()
    assert "Spring webinar" in listing and "Their campaign" not in listing
