"""Webhook settings pages: list, add (secret shown once), edit, rotate, test
event, delivery log and payload viewer, redeliver; admins only, per org."""

from __future__ import annotations

import pytest
from django.urls import reverse

from leadflow.core import hooks
from leadflow.core.tenancy import tenant_scope
from pipeline.models import WebhookDelivery, WebhookEndpoint
from tests.factories import WebhookDeliveryFactory, WebhookEndpointFactory


@pytest.fixture(autouse=True)
def no_stage_hooks(monkeypatch):
    monkeypatch.setattr(hooks.stage_changed, "overridden", [])


def url(org, name, **kwargs):
    return reverse(f"pipeline:{name}", kwargs={"org_slug": org.slug, **kwargs})


def endpoints_of(org):
    with tenant_scope(org):
        return list(WebhookEndpoint.objects.order_by("pk"))


@pytest.mark.django_db
def test_list_pins_its_queries(admin_client, org, other_org, django_assert_num_queries):
    WebhookEndpointFactory(organization=other_org, url="https://globex.example.com/h")
    response = admin_client.get(url(org, "webhook_list"))
    assert response.status_code == 200
    assert b"No webhook endpoints yet" in response.content
    for n in (1, 4):
        for endpoint in WebhookEndpointFactory.create_batch(n, organization=org):
            WebhookDeliveryFactory.create_batch(2, endpoint=endpoint, status="failed")
        # Session, user, memberships (2), then one query: the endpoints with their counts.
        with django_assert_num_queries(4):
            response = admin_client.get(url(org, "webhook_list"))
        assert response.content.count(b"2 failed") == (1 if n == 1 else 5)
    assert b"globex.example.com" not in response.content


@pytest.mark.django_db
def test_add_an_endpoint_and_see_its_secret_once(admin_client, org, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    response = admin_client.post(
        url(org, "webhook_create"),
        {"url": "https://crm.example.com/hooks", "description": "HubSpot", "events": ["sal", "won"],
         "is_active": "on"},
    )  # fmt: skip
    [endpoint] = endpoints_of(org)
    assert response.status_code == 302
    assert response["Location"] == url(org, "webhook_detail", webhook_id=endpoint.pk)
    assert (endpoint.events, endpoint.is_active) == (["sal", "won"], True)
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) > 30
    page = admin_client.get(response["Location"])
    assert endpoint.secret.encode() in page.content
    assert b"it will not be shown again" in page.content
    again = admin_client.get(response["Location"])
    assert endpoint.secret.encode() not in again.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"url": "http://10.0.0.5/h", "events": ["all"]}, b"private, loopback or reserved"),
        ({"url": "ftp://crm.example.com/h", "events": ["all"]}, b"http:// or https:// URL"),
        ({"url": "https://crm.example.com/h"}, b"This field is required"),
        ({"url": "https://crm.example.com/h", "events": ["heaven"]}, b"not one of the available"),
    ],
)
def test_bad_input_is_a_form_error(admin_client, org, settings, data, message):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    response = admin_client.post(url(org, "webhook_create"), data)
    assert response.status_code == 400
    assert message in response.content
    assert endpoints_of(org) == []


@pytest.mark.django_db
def test_edit_and_rotate(admin_client, org):
    endpoint = WebhookEndpointFactory(organization=org, events=["all"])
    old_secret = endpoint.secret
    response = admin_client.post(
        url(org, "webhook_edit", webhook_id=endpoint.pk),
        {"url": "https://crm.example.com/v2", "events": ["mql"]},
    )
    assert response.status_code == 302
    [saved] = endpoints_of(org)
    assert (saved.url, saved.events, saved.is_active, saved.secret) == (
        "https://crm.example.com/v2", ["mql"], False, old_secret
    )  # fmt: skip
    response = admin_client.post(url(org, "webhook_rotate", webhook_id=endpoint.pk))
    [rotated] = endpoints_of(org)
    assert rotated.secret != old_secret and rotated.secret_rotated_at
    assert rotated.secret.encode() in admin_client.get(response["Location"]).content


@pytest.mark.django_db
def test_send_a_test_event_and_read_the_log(admin_client, org, django_capture_on_commit_callbacks):
    endpoint = WebhookEndpointFactory(organization=org)
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(url(org, "webhook_test", webhook_id=endpoint.pk))
    assert response.status_code == 302
    assert len(callbacks) == 1  # the send is queued for the worker
    with tenant_scope(org):
        [delivery] = WebhookDelivery.objects.all()
    assert (delivery.event_type, delivery.status) == ("webhook.test", "pending")
    page = admin_client.get(url(org, "webhook_detail", webhook_id=endpoint.pk))
    assert b'hx-trigger="every 3s"' in page.content  # refreshes while pending
    assert b"webhook.test" in page.content
    partial = admin_client.get(
        url(org, "webhook_detail", webhook_id=endpoint.pk), headers={"HX-Request": "true"}
    )
    assert partial.content.lstrip().startswith(b'<div class="card shadow-sm" id="delivery-log"')
    detail = admin_client.get(url(org, "webhook_delivery", delivery_id=delivery.pk))
    assert b"your endpoint is reachable" in detail.content


@pytest.mark.django_db
def test_redeliver_a_failed_delivery(admin_client, org, django_capture_on_commit_callbacks):
    delivery = WebhookDeliveryFactory(
        endpoint__organization=org, status="failed", attempts=1, last_status_code=404,
        last_error="HTTP 404: nope",
    )  # fmt: skip
    detail = admin_client.get(url(org, "webhook_delivery", delivery_id=delivery.pk))
    assert b"HTTP 404: nope" in detail.content
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(url(org, "webhook_redeliver", delivery_id=delivery.pk))
    assert response.status_code == 302
    assert len(callbacks) == 1
    with tenant_scope(org):
        delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)


@pytest.mark.django_db
def test_delete(admin_client, org):
    delivery = WebhookDeliveryFactory(endpoint__organization=org)
    response = admin_client.post(url(org, "webhook_delete", webhook_id=delivery.endpoint_id))
    assert response.status_code == 302
    assert endpoints_of(org) == []


@pytest.mark.django_db
def test_only_admins_and_only_their_own_org(client_for, marketer, sales_rep, admin, other_org):
    theirs = WebhookDeliveryFactory(endpoint__organization=other_org)
    org = admin.organization
    for member in (marketer, sales_rep):
        assert client_for(member).get(url(org, "webhook_list")).status_code == 403
    client = client_for(admin)
    assert client.get(url(org, "webhook_detail", webhook_id=theirs.endpoint_id)).status_code == 404
    assert client.get(url(org, "webhook_delivery", delivery_id=theirs.pk)).status_code == 404
    response = client.post(url(org, "webhook_redeliver", delivery_id=theirs.pk))
    assert response.status_code == 404
    response = client.post(url(org, "webhook_delete", webhook_id=theirs.endpoint_id))
    assert response.status_code == 404
    assert len(endpoints_of(other_org)) == 1
