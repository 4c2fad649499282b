"""Outbound webhooks: deliveries queued with each stage change, signed, sent to a
real local HTTP server, retried on timeouts/5xx, failed on 4xx, redelivered."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client

from leadflow.core import hooks
from leadflow.core.tenancy import tenant_scope
from leads.models import LeadStage
from pipeline.models import DeliveryStatus, WebhookDelivery
from pipeline.services import stage_transition, stages_transition_many
from pipeline.services.webhooks import (
    MAX_ATTEMPTS,
    WebhookError,
    webhook_deliver,
    webhook_redeliver,
    webhook_send_test,
    webhook_url_clean,
    webhooks_on_stage_changed,
)
from tests.factories import LeadFactory, WebhookEndpointFactory, api_key_for
from tests.pipeline.support import fresh


class Receiver:
    """A CRM stand-in on 127.0.0.1: records each request, answers from a script
    (a status code, or ("sleep", seconds) to hang past the client's timeout)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": self.headers, "body": body})
                action = receiver.script.pop(0) if receiver.script else 200
                if isinstance(action, tuple):  # ("sleep", s): the client gives up first
                    time.sleep(action[1])
                    action = 200
                try:
                    self.send_response(action)
                    self.end_headers()
                    self.wfile.write(b"nope" if action >= 400 else b"ok")
                except OSError:
                    pass  # the client timed out and hung up

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def on(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture(autouse=True)
def webhooks_only(monkeypatch, settings):
    # Only this subscriber (nurture etc. are tested on their own); loopback allowed
    # for the local receiver, and a short timeout so the hanging test is quick.
    monkeypatch.setattr(hooks.stage_changed, "overridden", [webhooks_on_stage_changed])
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3


def deliveries(org):
    with tenant_scope(org):
        return list(WebhookDelivery.objects.order_by("pk"))


def verify(secret: str, request: dict) -> bool:
    """What a receiver does: recompute the HMAC of "timestamp.body"."""
    timestamp = request["headers"]["X-LeadFlow-Timestamp"]
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + request["body"], hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(request["headers"]["X-LeadFlow-Signature"], f"sha256={expected}")


@pytest.mark.django_db
def test_a_stage_change_reaches_subscribed_endpoints_signed(
    receiver, org, other_org, admin, django_capture_on_commit_callbacks
):
    endpoint = WebhookEndpointFactory(organization=org, url=receiver.url("/all"))
    WebhookEndpointFactory(organization=org, url=receiver.url("/won"), events=["won"])
    WebhookEndpointFactory(organization=org, url=receiver.url("/off"), is_active=False)
    WebhookEndpointFactory(organization=other_org, url=receiver.url("/globex"))
    lead = LeadFactory(organization=org, email="ada@example.com", external_id="crm-7")
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        stage_transition(lead=lead, to="mql", actor=admin, reason="Asked for a demo")

    assert [r["path"] for r in receiver.requests] == ["/all"]  # not /won, /off, nor org B's
    request = receiver.requests[0]
    headers = request["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-LeadFlow-Event"] == "lead.stage_changed"
    assert verify(endpoint.secret, request)
    assert not verify("whsec_wrong", request)
    assert abs(int(headers["X-LeadFlow-Timestamp"]) - time.time()) < 60
    payload = json.loads(request["body"])
    assert payload["id"] == headers["X-LeadFlow-Delivery"]
    assert payload["type"] == "lead.stage_changed"
    data = payload["data"]
    assert data["lead"]["id"] == lead.pk
    assert (data["lead"]["email"], data["lead"]["external_id"]) == ("ada@example.com", "crm-7")
    assert (data["from_stage"], data["to_stage"], data["rule"]) == ("new", "mql", "manual")
    assert (data["reason"], data["actor_email"]) == ("Asked for a demo", "admin@acme.example")
    [delivery] = deliveries(org)
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert (delivery.attempts, delivery.last_status_code) == (1, 200)
    assert delivery.delivered_at is not None
    assert deliveries(other_org) == []


@pytest.mark.django_db
def test_a_failing_endpoint_never_blocks_the_transition(
    receiver, org, django_capture_on_commit_callbacks
):
    """The API answers and the move is stored before anything is sent; the send
    is retried after a 500 and a hang past the timeout, with the same event id."""
    WebhookEndpointFactory(organization=org, url=receiver.url())
    receiver.script = [500, ("sleep", 1.0), 200]
    lead = LeadFactory(organization=org)
    api = Client(headers={"X-API-Key": api_key_for(org)})
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(
            f"/api/v1/leads/{lead.pk}/transitions",
            {"to": "mql", "reason": "CRM says hot"},
            content_type="application/json",
        )
    assert response.status_code == 200
    with tenant_scope(org):
        assert fresh(lead).stage == LeadStage.MQL
    [pending] = deliveries(org)
    assert (pending.status, pending.attempts, receiver.requests) == ("pending", 0, [])

    for callback in callbacks:  # what the commit sets off: the worker's sends
        callback()
    [delivery] = deliveries(org)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)
    assert len({r["headers"]["X-LeadFlow-Delivery"] for r in receiver.requests}) == 1
    assert len(receiver.requests) == 3


@pytest.mark.django_db
def test_each_failure_is_recorded_with_its_next_retry(receiver, org):
    """One attempt at a time, as the worker sees it."""
    endpoint = WebhookEndpointFactory(organization=org, url=receiver.url())
    receiver.script = [503, ("sleep", 1.0)]
    with tenant_scope(org):
        delivery = webhook_send_test(endpoint=endpoint)
        first = webhook_deliver(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert first.retry_in == pytest.approx(30, rel=0.11)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            "pending",
            1,
            503,
        )
        assert delivery.last_error == "HTTP 503: nope"
        assert delivery.next_attempt_at > delivery.last_attempt_at
        second = webhook_deliver(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert second.retry_in == pytest.approx(60, rel=0.11)  # exponential
        assert (delivery.attempts, delivery.last_status_code) == (2, None)
        assert delivery.last_error.startswith("Timed out")


@pytest.mark.django_db
def test_a_closed_port_is_retried(org):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens once it is closed
    endpoint = WebhookEndpointFactory(organization=org, url=f"http://127.0.0.1:{port}/x")
    with tenant_scope(org):
        delivery = webhook_send_test(endpoint=endpoint)
        attempt = webhook_deliver(delivery_id=delivery.pk)
        delivery.refresh_from_db()
    assert attempt.retry_in is not None
    assert delivery.status == "pending"
    assert delivery.last_error.startswith("Connection failed")


@pytest.mark.django_db
def test_retries_stop_after_max_attempts(receiver, org, django_capture_on_commit_callbacks):
    endpoint = WebhookEndpointFactory(organization=org, url=receiver.url())
    receiver.script = [502] * (MAX_ATTEMPTS + 2)
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        webhook_send_test(endpoint=endpoint)
    [delivery] = deliveries(org)
    assert (delivery.status, delivery.attempts) == ("failed", MAX_ATTEMPTS)
    assert delivery.next_attempt_at is None
    assert len(receiver.requests) == MAX_ATTEMPTS


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("script", "status", "attempts"),
    [
        ([400], "failed", 1),
        ([410], "failed", 1),
        ([301], "failed", 1),
        ([408, 200], "succeeded", 2),
        ([429, 204], "succeeded", 2),
    ],
)
def test_client_errors_fail_at_once_except_408_and_429(
    receiver, org, django_capture_on_commit_callbacks, script, status, attempts
):
    endpoint = WebhookEndpointFactory(organization=org, url=receiver.url())
    receiver.script = list(script)
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        webhook_send_test(endpoint=endpoint)
    [delivery] = deliveries(org)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        status, attempts, script[-1]
    )  # fmt: skip
    assert len(receiver.requests) == attempts


@pytest.mark.django_db
def test_a_delivered_event_is_not_sent_twice_and_can_be_redelivered(
    receiver, org, django_capture_on_commit_callbacks
):
    endpoint = WebhookEndpointFactory(organization=org, url=receiver.url())
    receiver.script = [404]
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        delivery = webhook_send_test(endpoint=endpoint)
    with tenant_scope(org):
        delivery.refresh_from_db()
        assert delivery.status == "failed"
        with django_capture_on_commit_callbacks(execute=True):
            webhook_redeliver(delivery=delivery)
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("succeeded", 1)
        assert webhook_deliver(delivery_id=delivery.pk).skipped  # a duplicate task run
    assert len(receiver.requests) == 2
    assert len({r["headers"]["X-LeadFlow-Delivery"] for r in receiver.requests}) == 1
    assert receiver.requests[1]["headers"]["X-LeadFlow-Event"] == "webhook.test"


@pytest.mark.django_db
def test_a_delivery_being_retried_cannot_be_redelivered(receiver, org):
    endpoint = WebhookEndpointFactory(organization=org, url=receiver.url())
    receiver.script = [500]
    with tenant_scope(org):
        delivery = webhook_send_test(endpoint=endpoint)
        webhook_deliver(delivery_id=delivery.pk)
        with pytest.raises(WebhookError, match="still being retried"):
            webhook_redeliver(delivery=delivery)


@pytest.mark.django_db
def test_private_hosts_are_refused_unless_allowed(receiver, org, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    for url in [
        "http://127.0.0.1/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest",
        "http://[::1]/x",
        "http://localhost:8000/x",
        "https://db.internal/x",
        "ftp://crm.example.com/x",
        "https://user:pw@crm.example.com/x",
        "crm.example.com/hooks",
    ]:
        with pytest.raises(WebhookError):
            webhook_url_clean(url)
    assert webhook_url_clean(" https://crm.example.com/hooks ") == "https://crm.example.com/hooks"
    # A name that resolves inside is caught at send time, before connecting.
    endpoint = WebhookEndpointFactory(
        organization=org, url=f"http://localhost:{receiver.server.server_port}/x"
    )
    with tenant_scope(org):
        delivery = webhook_send_test(endpoint=endpoint)
        attempt = webhook_deliver(delivery_id=delivery.pk)
        delivery.refresh_from_db()
    assert (attempt.status, delivery.status) == ("failed", "failed")
    assert "private" in delivery.last_error
    assert receiver.requests == []


@pytest.mark.django_db
def test_the_hook_runs_constant_statements(org, other_org, django_assert_num_queries):
    """Endpoints, leads, their latest moves, one insert — for 3 leads or 30."""
    WebhookEndpointFactory(organization=org)
    WebhookEndpointFactory(organization=org, events=["mql", "sal"])
    WebhookEndpointFactory(organization=org, events=["won"])  # not subscribed
    WebhookEndpointFactory(organization=other_org)
    for n in (3, 30):
        leads = LeadFactory.create_batch(n, organization=org)
        ids = [lead.pk for lead in leads]
        with tenant_scope(org):
            moved = stages_transition_many(
                organization_id=org.pk, lead_ids=ids, to="mql", rule="score"
            )
            assert moved == ids
            with django_assert_num_queries(4):
                created = webhooks_on_stage_changed(org.pk, ids, "new", "mql")
            assert len(created) == 2 * n
    with tenant_scope(org):
        # The bulk move itself queued them too: 2 endpoints × 33 leads, twice.
        assert WebhookDelivery.objects.count() == 2 * 2 * 33
        by_event = WebhookDelivery.objects.filter(lead_id=ids[0]).values_list("payload", flat=True)
        assert {p["data"]["from_stage"] for p in by_event} == {"new"}
    assert deliveries(other_org) == []


@pytest.mark.django_db
def test_no_endpoints_costs_one_query(org, django_assert_num_queries):
    lead = LeadFactory(organization=org)
    with tenant_scope(org), django_assert_num_queries(1):
        assert webhooks_on_stage_changed(org.pk, [lead.pk], "new", "mql") == []
