"""GET /api/v1/leads and /api/v1/leads/{id}: filters, cursor pages, constant queries."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from tests.factories import (
    ActivityFactory,
    CampaignFactory,
    CompanyFactory,
    LeadFactory,
    MembershipFactory,
    api_key_for,
)

URL = "/api/v1/leads"


@pytest.fixture
def api(org):
    client = Client(headers={"Authorization": f"Bearer {api_key_for(org, name='CRM sync')}"})
    client.get(URL)  # the key's once-a-minute last_used_at write, out of the way
    return client


def ids(response):
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


def set_times(lead, **times):
    with tenant_scope(lead.organization_id):
        Lead.objects.filter(pk=lead.pk).update(**times)


@pytest.mark.django_db
def test_filters(api, org, other_org):
    campaign = CampaignFactory(organization=org)
    owner = MembershipFactory(organization=org)
    company = CompanyFactory(organization=org, name="Initech")
    ada = LeadFactory(
        organization=org,
        email="ada@lovelace.io",
        first_name="Ada",
        last_name="Lovelace",
        country="GB",
        first_source="paid_search",
        first_campaign=campaign,
        owner=owner,
    )
    bob = LeadFactory(
        organization=org,
        email="bob@initech.com",
        first_name="Bob",
        company=company,
        country="US",
        quality="junk",
        external_id="crm-9",
        latest_source="event",
    )
    merged = LeadFactory(organization=org, first_name="Ada", merged_into=ada)
    discarded = LeadFactory(
        organization=org, first_name="Ada", discarded_at=datetime(2024, 1, 1, tzinfo=UTC)
    )
    LeadFactory(organization=other_org, first_name="Ada", email="ada@globex.com")
    set_times(ada, created_at=datetime(2024, 1, 10, tzinfo=UTC))
    set_times(bob, created_at=datetime(2024, 3, 10, tzinfo=UTC))

    assert ids(api.get(URL)) == [ada.pk, bob.pk]
    assert ids(api.get(URL, {"include_inactive": "true"})) == [
        ada.pk,
        bob.pk,
        merged.pk,
        discarded.pk,
    ]
    assert ids(api.get(URL, {"q": "ada lovelace"})) == [ada.pk]
    assert ids(api.get(URL, {"q": "initech"})) == [bob.pk]  # company name
    assert ids(api.get(URL, {"email": " ADA@Lovelace.IO "})) == [ada.pk]
    assert ids(api.get(URL, {"external_id": "crm-9"})) == [bob.pk]
    assert ids(api.get(URL, {"country": "United Kingdom"})) == [ada.pk]
    assert ids(api.get(URL, {"country": "us"})) == [bob.pk]
    assert ids(api.get(URL, {"quality": "junk"})) == [bob.pk]
    assert ids(api.get(URL, {"source": "paid_search"})) == [ada.pk]
    assert ids(api.get(URL, {"source": "event"})) == [bob.pk]
    assert ids(api.get(URL, {"campaign": campaign.pk})) == [ada.pk]
    assert ids(api.get(URL, {"owner": owner.pk})) == [ada.pk]
    assert ids(api.get(URL, {"created_after": "2024-02-01"})) == [bob.pk]
    assert ids(api.get(URL, {"created_before": "2024-02-01T00:00:00Z"})) == [ada.pk]
    assert ids(api.get(URL, {"created_after": "2024-01-01", "created_before": "2024-12-31"})) == [
        ada.pk,
        bob.pk,
    ]
    assert ids(api.get(URL, {"q": "nobody-matches-this"})) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params, field",
    [
        ({"created_after": "last tuesday"}, "created_after"),
        ({"updated_after": "2024-13-45"}, "updated_after"),
        ({"quality": "great"}, "quality"),
        ({"source": "carrier pigeon"}, "source"),
        ({"order": "email"}, "order"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"campaign": "spring"}, "campaign"),
        ({"owner": str(10**30)}, "owner"),
        ({"include_inactive": "perhaps"}, "include_inactive"),
    ],
)
def test_bad_query_params_are_400(api, params, field):
    response = api.get(URL, params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in {d["field"] for d in error["details"]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params, code, text",
    [
        (
            {"created_after": "2024-05-01", "created_before": "2024-01-01"},
            "invalid_request",
            "later",
        ),
        ({"country": "Atlantis"}, "invalid_request", "Atlantis"),
        ({"updated_afer": "2024-01-01"}, "unknown_parameter", "updated_afer"),
        ({"cursor": "!!!not-a-cursor"}, "invalid_cursor", "cursor"),
        ({"cursor": "eyJ4IjoxfQ"}, "invalid_cursor", "cursor"),
    ],
)
def test_inconsistent_query_params_are_400(api, params, code, text):
    response = api.get(URL, params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code
    assert text in error["message"]


@pytest.mark.django_db
def test_cursor_pages_cover_everything_once(api, org, other_org):
    leads = LeadFactory.create_batch(7, organization=org)
    LeadFactory.create_batch(2, organization=other_org)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = api.get(URL, params).json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        cursor = body["next_cursor"]
    assert pages == 3
    assert seen == [lead.pk for lead in leads]
    descending = ids(api.get(URL, {"order": "-id", "limit": 200}))
    assert descending == seen[::-1]


@pytest.mark.django_db
def test_crm_sync_by_updated_at(api, org):
    base = datetime(2024, 6, 1, tzinfo=UTC)
    a, b, c, d = LeadFactory.create_batch(4, organization=org)
    # b and c share a timestamp: the id breaks the tie, nothing is skipped.
    for lead, minutes in ((a, 30), (b, 10), (c, 10), (d, 0)):
        set_times(lead, updated_at=base + timedelta(minutes=minutes))
    first = api.get(URL, {"order": "updated_at", "limit": 2, "updated_after": base.isoformat()})
    assert ids(first) == [d.pk, b.pk]
    cursor = first.json()["next_cursor"]
    second = api.get(
        URL,
        {"order": "updated_at", "limit": 2, "updated_after": base.isoformat(), "cursor": cursor},
    )
    assert ids(second) == [c.pk, a.pk]
    assert second.json()["has_more"] is False
    assert ids(api.get(URL, {"order": "-updated_at"})) == [a.pk, c.pk, b.pk, d.pk]
    later = api.get(URL, {"updated_after": (base + timedelta(minutes=5)).isoformat()})
    assert sorted(ids(later)) == sorted([a.pk, b.pk, c.pk])
    # A cursor is bound to its ordering.
    mixed = api.get(URL, {"order": "id", "cursor": cursor})
    assert mixed.status_code == 400
    assert mixed.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.django_db
def test_list_runs_a_constant_number_of_queries(api, org, django_assert_num_queries):
    company = CompanyFactory(organization=org)
    LeadFactory.create_batch(30, organization=org, company=company)
    # 1: the API key, 2: the page of leads with their companies.
    for limit in (2, 30):
        with django_assert_num_queries(2):
            response = api.get(URL, {"limit": limit})
        assert len(response.json()["items"]) == limit
        assert response.json()["items"][0]["company"]["id"] == company.pk


@pytest.mark.django_db
def test_detail_has_company_and_latest_activities(api, org, django_assert_num_queries):
    company = CompanyFactory(organization=org, name="Initech", domain="initech.com")
    lead = LeadFactory(organization=org, company=company)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    for day in range(60):
        ActivityFactory(lead=lead, occurred_at=base + timedelta(days=day))
    with django_assert_num_queries(3):  # key, lead + company, activities
        response = api.get(f"{URL}/{lead.pk}")
    body = response.json()
    assert body["id"] == lead.pk
    assert body["company"]["name"] == "Initech"
    assert len(body["activities"]) == 50
    assert body["activities"][0]["occurred_at"].startswith("2024-02-29")
    occurred = [a["occurred_at"] for a in body["activities"]]
    assert occurred == sorted(occurred, reverse=True)


@pytest.mark.django_db
def test_another_orgs_lead_is_404_like_a_missing_one(api, org, other_org):
    theirs = LeadFactory(organization=other_org)
    for lead_id in (theirs.pk, 10**9, 10**30):  # beyond bigint: still just "not found"
        response = api.get(f"{URL}/{lead_id}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert ids(api.get(URL, {"include_inactive": "true"})) == []
