"""lead.created / lead.updated / lead.merged / lead.deleted webhooks: fired from
the leads app's hook points, signed, retried and logged like stage events."""

from __future__ import annotations

import json

import pytest

from leadflow.core.tenancy import tenant_scope
from leads.models import ActivityKind, Channel, Lead
from leads.services import leads as lead_services
from leads.services.ingest import Touch, lead_ingest_batch
from pipeline.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from pipeline.services.webhooks import (
    WebhookError,
    webhook_deliver,
    webhook_endpoint_save,
    webhooks_on_lead_created,
    webhooks_on_lead_deleted,
    webhooks_on_lead_updated,
)
from tests.factories import LeadFactory, WebhookEndpointFactory
from tests.pipeline.test_webhooks import Receiver, verify

LEAD_EVENTS = ["lead.created", "lead.updated", "lead.merged", "lead.deleted"]


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def endpoints(receiver, org, other_org):
    lead_hook = WebhookEndpointFactory(
        organization=org, url=receiver.url("/lead"), events=LEAD_EVENTS
    )
    WebhookEndpointFactory(organization=org, url=receiver.url("/stages"))  # ["all"]: stages only
    WebhookEndpointFactory(organization=org, url=receiver.url("/won"), events=["won"])
    WebhookEndpointFactory(organization=other_org, url=receiver.url("/globex"), events=LEAD_EVENTS)
    return lead_hook


def events(receiver, path="/lead") -> list[dict]:
    return [json.loads(r["body"]) for r in receiver.on(path)]


@pytest.mark.django_db
def test_lead_events_reach_their_subscribers_signed(
    receiver, endpoints, org, other_org, admin, django_capture_on_commit_callbacks
):
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        [created] = lead_ingest_batch(
            organization_id=org.pk,
            rows=[{"email": "ada@example.com", "first_name": "Ada"}],
            touch=Touch(source=Channel.DIRECT, activity_kind=ActivityKind.FORM_SUBMIT),
        )
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        lead_ingest_batch(  # the same person again: no second lead.created
            organization_id=org.pk,
            rows=[{"email": "ada@example.com"}],
            touch=Touch(source=Channel.DIRECT, activity_kind=ActivityKind.PAGE_VIEW),
        )
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        ada = Lead.objects.get(pk=created.lead_id)
        lead_services.lead_update(lead=ada, data={"title": "CTO"}, actor=admin)
    other = LeadFactory(organization=org, email="ada.l@example.com")
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        lead_services.lead_merge(keep=ada, drop=other, chosen={}, actor=admin)
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        doomed = LeadFactory(organization=org, email="gone@example.com", external_id="crm-9")
        doomed_id = doomed.pk
        lead_services.leads_deleted(organization_id=org.pk, leads=[doomed])
        doomed.delete()

    got = events(receiver)
    assert [e["type"] for e in got] == LEAD_EVENTS
    assert all(verify(endpoints.secret, r) for r in receiver.on("/lead"))
    assert [r["headers"]["X-LeadFlow-Event"] for r in receiver.on("/lead")] == LEAD_EVENTS
    created_event, updated, merged, deleted = (e["data"] for e in got)
    assert created_event["lead"]["id"] == created.lead_id
    assert created_event["lead"]["email"] == "ada@example.com"
    assert updated["changes"] == {"title": {"from": "", "to": "CTO"}}
    assert (merged["lead"]["id"], merged["merged_lead"]["id"]) == (created.lead_id, other.pk)
    assert deleted["lead"] == {
        "id": doomed_id,
        "external_id": "crm-9",
        "stage": "new",
    }
    assert receiver.on("/stages") == receiver.on("/won") == receiver.on("/globex") == []
    with tenant_scope(org):
        log = list(WebhookDelivery.objects.filter(endpoint=endpoints).order_by("pk"))
    assert [d.status for d in log] == [DeliveryStatus.SUCCEEDED] * 4
    assert log[-1].lead_id is None  # the deleted lead's row is gone


@pytest.mark.django_db
def test_an_edit_that_changes_nothing_sends_nothing(
    receiver, endpoints, org, admin, django_capture_on_commit_callbacks
):
    lead = LeadFactory(organization=org, title="CTO")
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        lead_services.lead_update(lead=lead, data={"title": "CTO"}, actor=admin)
    assert events(receiver) == []


@pytest.mark.django_db
def test_a_failed_lead_event_is_retried_with_backoff(receiver, endpoints, org, admin):
    receiver.script = [503]
    lead = LeadFactory(organization=org)
    with tenant_scope(org):
        lead_services.lead_update(lead=lead, data={"city": "Berlin"}, actor=admin)
        [delivery] = WebhookDelivery.objects.filter(endpoint=endpoints)
        first = webhook_deliver(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            DeliveryStatus.PENDING,
            1,
            503,
        )
        assert first.retry_in == pytest.approx(30, rel=0.11)
        webhook_deliver(delivery_id=delivery.pk)
        delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 2)
    assert len(receiver.on("/lead")) == 2
    assert len({r["headers"]["X-LeadFlow-Delivery"] for r in receiver.on("/lead")}) == 1


@pytest.mark.django_db
def test_endpoints_subscribe_to_lead_events_by_name(org, other_org, admin):
    with tenant_scope(org):
        endpoint = webhook_endpoint_save(
            endpoint=WebhookEndpoint(organization=org),
            url="https://crm.example.com/hooks",
            events=["all", "lead.created"],
            actor=admin,
        )
        assert endpoint.events == ["all", "lead.created"]
        assert endpoint.wants_event("lead.created") and not endpoint.wants_event("lead.deleted")
        with pytest.raises(WebhookError, match=r"lead\.exploded"):
            webhook_endpoint_save(
                endpoint=endpoint, url=endpoint.url, events=["lead.exploded"], actor=admin
            )


@pytest.mark.django_db
def test_lead_events_cost_one_query_without_subscribers(org, other_org, django_assert_num_queries):
    WebhookEndpointFactory(organization=org, events=["all"])  # stage changes only
    WebhookEndpointFactory(organization=other_org, events=LEAD_EVENTS)
    leads = LeadFactory.create_batch(3, organization=org)
    ids = [lead.pk for lead in leads]
    with tenant_scope(org):
        with django_assert_num_queries(1):
            assert webhooks_on_lead_created(org.pk, ids) == []
        with django_assert_num_queries(0):
            assert webhooks_on_lead_updated(org.pk, {ids[0]: {"city": ["", "Rome"]}}) == []
        with django_assert_num_queries(0):
            assert webhooks_on_lead_deleted(org.pk, [{"id": ids[0]}]) == []
        WebhookEndpointFactory(organization=org, events=["lead.deleted"])
        assert len(webhooks_on_lead_deleted(org.pk, [{"id": ids[0]}])) == 1


@pytest.mark.django_db
def test_an_import_that_changes_leads_sends_lead_updated_per_changed_lead(
    receiver,
    endpoints,
    org,
    other_org,
    django_capture_on_commit_callbacks,
    django_assert_num_queries,
):
    LeadFactory(organization=org, email="same@example.com", title="CTO")  # unchanged: no event
    moved = LeadFactory(organization=org, email="moved@example.com", title="CTO", city="Rome")
    rows = [
        {"email": "same@example.com", "title": "CTO"},
        {"email": "moved@example.com", "title": "CEO", "city": "Milan"},
    ]
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        lead_ingest_batch(
            organization_id=org.pk,
            rows=rows,
            touch=Touch(source=Channel.PURCHASED_LIST, activity_kind=ActivityKind.NOTE),
        )
    [event] = events(receiver)
    assert event["type"] == "lead.updated" and event["data"]["lead"]["id"] == moved.pk
    assert event["data"]["changes"] == {
        "city": {"from": "Rome", "to": "Milan"},
        "title": {"from": "CTO", "to": "CEO"},
    }
