"""Needs-review queue, possible duplicates, manual merge; companies and campaigns pages."""

import pytest
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, ActivityKind, Channel, FormSubmission, LeadMerge, Quality
from leads.selectors import possible_duplicates
from leads.services.ingest import Touch, lead_ingest_batch
from tests.factories import (
    ActivityFactory,
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
def test_possible_duplicates(org, other_org):
    company = CompanyFactory(organization=org)
    a = LeadFactory(organization=org, phone="+4930123456", first_name="X")
    b = LeadFactory(organization=org, phone="+4930123456", first_name="Y")
    c = LeadFactory(organization=org, company=company, first_name="Jon", last_name="Smith")
    d = LeadFactory(organization=org, company=company, first_name="John", last_name="Smith")
    LeadFactory(organization=org, company=company, first_name="Maria", last_name="Garcia")
    e = LeadFactory(organization=org, company_name="Hooli", first_name="Ann", last_name="Lee")
    f = LeadFactory(organization=org, company_name="hooli", first_name="ann", last_name="lee")
    LeadFactory(organization=other_org, phone="+4930123456")  # another tenant: never paired
    with tenant_scope(org):
        pairs = {(p.a.pk, p.b.pk): p.reason for p in possible_duplicates()}
    assert pairs == {
        (a.pk, b.pk): "Same phone +4930123456",
        (c.pk, d.pk): "Similar name at the same company",
        (e.pk, f.pk): "Same name at the same company",
    }


@pytest.mark.django_db
def test_duplicates_page_query_count_is_bounded(admin_client, org, django_assert_max_num_queries):
    for i in range(30):
        LeadFactory(organization=org, phone=f"+49301234{i % 10:02d}")
    with django_assert_max_num_queries(8):
        response = admin_client.get(url("duplicate_list", org))
    assert len(response.context["pairs"]) == 10 * 3  # 10 phones × C(3,2)


@pytest.mark.django_db
def test_manual_merge_moves_history_and_keeps_dropped(admin_client, admin, org):
    keep = LeadFactory(
        organization=org, email="ann@initech.com", title="", city="Berlin", custom={"a": 1}
    )
    drop = LeadFactory(
        organization=org,
        email="ann.lee@gmail.com",
        title="VP Sales",
        city="Munich",
        custom={"b": 2},
        do_not_call=True,
    )
    ActivityFactory.create_batch(2, lead=keep)
    ActivityFactory.create_batch(3, lead=drop)
    FormSubmissionFactory(form__organization=org, lead=drop)
    page = admin_client.get(url("lead_merge", org, lead_id=keep.pk, other_lead_id=drop.pk))
    assert "VP Sales" in page.content.decode() and "Munich" in page.content.decode()
    response = admin_client.post(
        url("lead_merge", org, lead_id=keep.pk, other_lead_id=drop.pk),
        {"title": "dropped", "city": "kept", "first_name": "kept"},
    )
    assert response.status_code == 302
    with tenant_scope(org):
        keep.refresh_from_db()
        drop.refresh_from_db()
        assert Activity.objects.filter(lead=keep).count() == 5
        assert FormSubmission.objects.filter(lead=keep).count() == 1
        merge = LeadMerge.objects.get()
    assert (keep.title, keep.city, keep.do_not_call) == ("VP Sales", "Berlin", True)
    assert keep.custom == {"a": 1, "b": 2}
    assert drop.merged_into == keep and drop.email == "ann.lee@gmail.com"
    assert merge.merged_by == admin.user and merge.dropped_snapshot["title"] == "VP Sales"
    # New data for the dropped address goes to the kept lead.
    with tenant_scope(org):
        [result] = lead_ingest_batch(
            organization_id=org.pk,
            rows=[{"email": "Ann.Lee@gmail.com", "first_name": "Annie"}],
            touch=Touch(source=Channel.EMAIL, activity_kind=ActivityKind.EMAIL_CLICK),
        )
    assert result.lead_id == keep.pk and result.outcome == "merged"
    # The dropped lead can't be merged again.
    again = admin_client.post(url("lead_merge", org, lead_id=keep.pk, other_lead_id=drop.pk))
    assert again.status_code == 404


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
    with django_assert_num_queries(5) as first:  # one page: no count query
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
