"""POST /api/v1/activities: batches, per-item verdicts, idempotency, constant queries."""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leadflow.core import hooks
from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, Lead
from leads.services.activities import activity_record_batch
from tests.factories import CampaignFactory, LeadFactory, api_key_for

URL = "/api/v1/activities"


@pytest.fixture
def api(org):
    return Client(headers={"X-API-Key": api_key_for(org, name="Product events")})


def post(client, data):
    return client.post(URL, json.dumps(data), content_type="application/json")


def item(lead, kind="page_view", **extra):
    occurred = extra.pop("occurred_at", timezone.now() - timedelta(hours=1))
    return {"lead": lead, "kind": kind, "occurred_at": occurred.isoformat(), **extra}


def activities_of(org):
    with tenant_scope(org):
        return list(Activity.objects.order_by("pk"))


@pytest.fixture
def lead(org):
    return LeadFactory(organization=org, email="ada@lovelace.io", external_id="crm-1")


@pytest.mark.django_db
def test_batch_is_recorded_with_a_result_per_item(api, org, other_org, lead):
    campaign = CampaignFactory(organization=org, name="Launch")
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    response = post(
        api,
        {
            "activities": [
                item({"id": lead.pk}, "page_view", properties={"url": "/pricing"}),
                item({"email": "ADA@lovelace.io"}, "email_open", campaign="launch"),
                item(
                    {"external_id": "crm-1"}, "demo_request", occurred_at=when, campaign=campaign.pk
                ),
            ]
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["duplicates"], body["errors"]) == (3, 0, 0)
    assert [r["status"] for r in body["results"]] == ["created"] * 3
    assert {r["lead_id"] for r in body["results"]} == {lead.pk}
    stored = activities_of(org)
    assert [a.pk for a in stored] == [r["activity_id"] for r in body["results"]]
    assert [a.kind for a in stored] == ["page_view", "email_open", "demo_request"]
    assert stored[0].properties == {"url": "/pricing"}
    assert stored[1].campaign_id == stored[2].campaign_id == campaign.pk
    with tenant_scope(org):
        lead.refresh_from_db()
    assert lead.last_activity_at == max(a.occurred_at for a in stored)
    assert activities_of(other_org) == []


@pytest.mark.django_db
def test_re_posting_external_ids_is_idempotent(api, org, lead):
    batch = {
        "activities": [
            item({"id": lead.pk}, external_id="evt-1"),
            item({"id": lead.pk}, external_id="evt-2"),
            item({"id": lead.pk}, external_id="evt-2"),  # repeated inside the batch
        ]
    }
    first = post(api, batch).json()
    assert [r["status"] for r in first["results"]] == ["created", "created", "duplicate"]
    assert first["results"][2]["activity_id"] == first["results"][1]["activity_id"]
    again = post(api, batch).json()
    assert (again["created"], again["duplicates"]) == (0, 3)
    assert [r["activity_id"] for r in again["results"]] == [
        r["activity_id"] for r in first["results"]
    ]
    assert len(activities_of(org)) == 2


@pytest.mark.django_db
def test_bad_items_get_their_own_errors_and_good_ones_are_kept(api, org, other_org, lead):
    foreign_lead = LeadFactory(organization=other_org)
    foreign_campaign = CampaignFactory(organization=other_org)
    now = timezone.now()
    results = post(
        api,
        {
            "activities": [
                item({"id": lead.pk}, "dance"),
                item({"id": lead.pk}, occurred_at=now + timedelta(days=2)),
                item({"id": lead.pk}, occurred_at=datetime(1999, 1, 1, tzinfo=UTC)),
                item({"id": foreign_lead.pk}),
                item({"email": "nobody@nowhere.example"}),
                item({"id": lead.pk}, campaign=foreign_campaign.pk),
                item({}),
                {"lead": {"id": lead.pk}, "kind": "call"},
                item({"id": 10**30}),  # beyond bigint
                item({"id": lead.pk}, campaign=10**30),
                item({"id": lead.pk}, "meeting", occurred_at=now + timedelta(hours=2)),
            ]
        },
    ).json()["results"]
    codes = [[e["code"] for e in r["errors"]] for r in results]
    assert codes == [
        ["unknown_kind"],
        ["in_future"],
        ["too_early"],
        ["unknown_lead"],
        ["unknown_lead"],
        ["unknown_campaign"],
        ["lead_missing"],
        ["required"],
        ["unknown_lead"],
        ["unknown_campaign"],
        [],
    ]
    assert [r["status"] for r in results] == ["error"] * 10 + ["created"]
    assert "page_view" in results[0]["errors"][0]["message"]  # says what is allowed
    assert [a.kind for a in activities_of(org)] == ["meeting"]
    assert activities_of(other_org) == []


@pytest.mark.django_db
def test_missing_leads_can_be_created(api, org, lead):
    body = post(
        api,
        {
            "create_missing_leads": True,
            "source": "paid_search",
            "activities": [
                item({"email": "New.Person@initech.com"}, "trial_signup"),
                item({"email": "new.person@initech.com"}, "page_view"),
                item({"external_id": "crm-77"}),
                item({"email": "not an email"}),
                item({"id": 987654}),
                item({"email": "test@test.com"}),  # junk, but still a (quarantined) lead
            ],
        },
    ).json()
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["created", "created", "created", "error", "error", "created"]
    assert body["leads_created"] == 3
    assert body["results"][0]["lead_id"] == body["results"][1]["lead_id"]
    with tenant_scope(org):
        created = Lead.objects.get(email="new.person@initech.com")
        assert Lead.objects.filter(external_id="crm-77").exists()
        assert not Lead.objects.filter(email="not an email").exists()
    assert created.first_source == "paid_search"
    assert body["results"][3]["errors"][0]["code"] == "lead_invalid"
    assert "@-sign" in body["results"][3]["errors"][0]["message"]  # the scrub reason
    assert body["results"][4]["errors"][0]["code"] == "unknown_lead"


@pytest.mark.django_db
def test_activity_on_a_merged_lead_goes_to_the_survivor(api, org):
    survivor = LeadFactory(organization=org)
    dropped = LeadFactory(organization=org, merged_into=survivor)
    [result] = post(api, {"activities": [item({"id": dropped.pk})]}).json()["results"]
    assert result["lead_id"] == survivor.pk


@pytest.mark.django_db
def test_post_ingest_hooks_get_the_touched_leads(api, org, lead, monkeypatch):
    calls = []
    monkeypatch.setattr(hooks.post_ingest, "overridden", [lambda o, ids: calls.append((o, ids))])
    other = LeadFactory(organization=org)
    post(api, {"activities": [item({"id": other.pk}), item({"id": lead.pk}), item({"id": 0})]})
    assert calls == [(org.pk, sorted([lead.pk, other.pk]))]


@pytest.mark.django_db
def test_batch_of_1001_is_rejected_and_nothing_is_stored(api, org, lead):
    batch = {"activities": [item({"id": lead.pk}) for _ in range(1001)]}
    response = post(api, batch)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "batch_too_large"
    assert "1,000" in error["message"] and "1,001" in error["message"]
    assert activities_of(org) == []
    assert post(api, {"activities": batch["activities"][:1000]}).json()["created"] == 1000


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field",
    [
        (
            {"activities": [{"lead": {"id": 1}, "kind": "call", "occurred_at": "yesterday"}]},
            "activities.0.occurred_at",
        ),
        ({"activities": [{"lead": "ada", "kind": "call"}]}, "activities.0.lead"),
        ({"activities": [{"lead": {"id": True}, "kind": "call"}]}, "activities.0.lead.id"),
        (
            {"activities": [{"lead": {"id": 1}, "kind": "call", "properties": []}]},
            "activities.0.properties",
        ),
        ({"activities": []}, "activities"),
        ({"activities": "all"}, "activities"),
        ({}, "activities"),
    ],
)
def test_wrong_types_reject_the_whole_batch(api, org, body, field):
    response = post(api, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in {d["field"] for d in error["details"]}
    assert activities_of(org) == []


@pytest.mark.django_db
def test_malformed_json_and_oversized_batches(api):
    response = api.post(URL, "{'activities': []}", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    huge = json.dumps({"activities": [{"blob": "x" * (6 * 1024 * 1024)}]})
    response = api.post(URL, huge, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.django_db
def test_a_batch_costs_a_constant_number_of_queries(api, org):
    leads = LeadFactory.create_batch(60, organization=org)
    campaign = CampaignFactory(organization=org)

    def batch(n, tag):
        return {
            "activities": [
                item(
                    {"email": lead.email} if i % 2 else {"id": lead.pk},
                    campaign=campaign.pk,
                    external_id=f"{tag}-{i}",
                )
                for i, lead in enumerate(leads[:n])
            ]
        }

    post(api, batch(1, "warmup"))  # the key's last_used_at write happens once a minute
    counts = []
    for n, tag in ((3, "small"), (50, "large")):
        with CaptureQueriesContext(connection) as ctx:
            assert post(api, batch(n, tag)).json()["created"] == n
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_re_posts_store_each_external_id_once(org):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's concurrent unique-index checks")
    lead = LeadFactory(organization=org)
    items = [
        {
            "lead": {"id": lead.pk},
            "kind": "page_view",
            "occurred_at": timezone.now(),
            "external_id": f"evt-{i}",
        }
        for i in range(20)
    ]
    barrier = threading.Barrier(6)
    outcomes, errors = [], []

    def worker():
        try:
            barrier.wait()
            with tenant_scope(org):
                result = activity_record_batch(organization_id=org.pk, items=items)
            outcomes.append((result.count("created"), result.count("duplicate")))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(created for created, _ in outcomes) == 20
    assert sum(duplicates for _, duplicates in outcomes) == 5 * 20
    assert len(activities_of(org)) == 20
