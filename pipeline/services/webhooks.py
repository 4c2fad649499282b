"""Outbound webhooks: signed stage-change events for a CRM.

A stage change (leadflow.core.hooks.stage_changed) inserts one
WebhookDelivery per subscribed endpoint × lead, in the transition's
transaction and in a constant number of statements; the send happens in a
Celery worker after commit, so a slow or failing endpoint never holds up the
transition. Each attempt is recorded on the delivery; timeouts, connection
errors, 408, 429 and 5xx are retried with exponential backoff (at most
MAX_ATTEMPTS sends), any other answer is final.

Signature: ``X-LeadFlow-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>``
with ``X-LeadFlow-Timestamp`` (Unix seconds), so a receiver can refuse replays.
Delivery is at least once: receivers dedupe on ``X-LeadFlow-Delivery`` (the event id).

Outbound requests go only to public addresses (unless settings.DEBUG or
settings.WEBHOOKS_ALLOW_PRIVATE): the host is resolved at send time and the
connection is made to the vetted address, so DNS cannot point it inside.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import random
import secrets
import socket
import ssl
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Membership
from leadflow.core.orgfacts import org_fact
from leadflow.core.tenancy import enqueue_on_commit
from leads.models import Lead, LeadStage
from pipeline.errors import PipelineError
from pipeline.models import (
    WEBHOOK_ALL_EVENTS,
    WEBHOOK_LEAD_EVENTS,
    DeliveryStatus,
    StageTransition,
    WebhookDelivery,
    WebhookEndpoint,
)

EVENT_STAGE_CHANGED = "lead.stage_changed"
EVENT_PING = "webhook.test"
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 30  # 30 s, 1 min, 2 min … 32 min: about an hour in all
BACKOFF_MAX_SECONDS = 3600
DEFAULT_TIMEOUT_SECONDS = 5.0
MAX_ENDPOINTS_PER_ORG = 20
SECRET_PREFIX = "whsec_"
USER_AGENT = "LeadFlow-Webhooks/1"
RETRY_STATUSES = frozenset({408, 429})
# Names that always mean "this machine / this network", whatever DNS says.
LOCAL_NAMES = ("localhost", ".localhost", ".local", ".internal", ".localdomain")


class WebhookError(PipelineError):
    """An endpoint that cannot be saved, or a delivery that cannot be resent."""


# --- Endpoints ---------------------------------------------------------------------


def _allow_private() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_PRIVATE", settings.DEBUG))


def _timeout() -> float:
    return float(getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))


def _blocked_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def webhook_url_clean(url: str) -> str:
    """The URL if the product may send to it; WebhookError with the reason otherwise.

    Host names are checked again, resolved, when sending (they may change)."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(
            "Enter a full http:// or https:// URL, e.g. https://crm.example.com/hooks."
        )
    if parts.username or parts.password:
        raise WebhookError("Don't put credentials in the URL; verify the signature instead.")
    try:
        parts.port  # noqa: B018 — raises on a bad port
    except ValueError as exc:
        raise WebhookError("The URL's port is not a number between 1 and 65535.") from exc
    if _allow_private():
        return url
    host = parts.hostname.lower().rstrip(".")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(LOCAL_NAMES):
            raise WebhookError("Webhooks can't be sent to a local host name.") from None
        return url
    if _blocked_ip(ip):
        raise WebhookError(
            "Webhooks can't be sent to a private, loopback or reserved address; "
            "use your endpoint's public address."
        )
    return url


def _clean_events(events: list[str]) -> list[str]:
    events = list(dict.fromkeys(events or []))
    if not events:
        raise WebhookError("Choose at least one stage to send, or all stage changes.")
    unknown = sorted(
        set(events) - set(LeadStage.values) - {WEBHOOK_ALL_EVENTS, *WEBHOOK_LEAD_EVENTS}
    )
    if unknown:
        raise WebhookError(f"Unknown event(s): {', '.join(unknown)}.")
    if WEBHOOK_ALL_EVENTS in events:
        return [WEBHOOK_ALL_EVENTS, *(e for e in events if e in WEBHOOK_LEAD_EVENTS)]
    return events


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


@transaction.atomic
def webhook_endpoint_save(
    *,
    endpoint: WebhookEndpoint,
    url: str,
    events: list[str],
    description: str = "",
    is_active: bool = True,
    actor: Membership | None = None,
) -> WebhookEndpoint:
    """Create or update an endpoint; a new one gets a fresh secret."""
    creating = endpoint.pk is None
    if creating and WebhookEndpoint.objects.count() >= MAX_ENDPOINTS_PER_ORG:
        raise WebhookError(f"An organization can have at most {MAX_ENDPOINTS_PER_ORG} endpoints.")
    endpoint.url = webhook_url_clean(url)
    endpoint.events = _clean_events(events)
    endpoint.description = (description or "").strip()[:200]
    endpoint.is_active = is_active
    if creating:
        endpoint.secret = _new_secret()
        endpoint.created_by = actor
    endpoint.save()
    return endpoint


@transaction.atomic
def webhook_secret_rotate(*, endpoint: WebhookEndpoint) -> str:
    """A new secret; requests are signed with it from now on (pending retries too)."""
    endpoint.secret = _new_secret()
    endpoint.secret_rotated_at = timezone.now()
    endpoint.save(update_fields=["secret", "secret_rotated_at"])
    return endpoint.secret


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()  # its delivery log goes with it


# --- Events --------------------------------------------------------------------------


def _lead_data(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["pk"],
        "email": row["email"],
        "external_id": row["external_id"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "stage": row["stage"],
        "owner_email": row["owner__user__email"],
    }


def _stage_event(event_id: uuid.UUID, organization_id: int, now: datetime, lead, move) -> dict:
    return {
        "id": str(event_id),
        "type": EVENT_STAGE_CHANGED,
        "created_at": now.isoformat(),
        "organization_id": organization_id,
        "data": {
            "lead": _lead_data(lead),
            "from_stage": move["from_stage"] if move else "",
            "to_stage": move["to_stage"] if move else lead["stage"],
            "occurred_at": move["occurred_at"].isoformat() if move else now.isoformat(),
            "rule": move["rule"] if move else "",
            "reason_code": move["reason_code"] if move else "",
            "reason": move["reason"] if move else "",
            "actor_email": move["actor__user__email"] if move else None,
        },
    }


def webhooks_on_stage_changed(
    organization_id: int, lead_ids: list[int], from_stage: str, to_stage: str
) -> list[int]:
    """leadflow.core.hooks.stage_changed: queue one delivery per subscribed endpoint × lead.

    Runs inside the transition's transaction, in a constant number of
    statements (endpoints, leads, their latest move, one insert); the sends are
    enqueued once it commits. Returns the delivery ids."""
    endpoints = [e for e in WebhookEndpoint.objects.filter(is_active=True) if e.wants(to_stage)]
    if not endpoints or not lead_ids:
        return []
    leads = Lead.objects.filter(pk__in=lead_ids).values(
        "pk", "email", "external_id", "first_name", "last_name", "stage", "owner__user__email"
    )
    latest: dict[int, Mapping[str, Any]] = {}
    moves = (
        StageTransition.objects.filter(lead_id__in=lead_ids, to_stage=to_stage)
        .order_by("lead_id", "-occurred_at", "-pk")
        .values(
            "lead_id",
            "from_stage",
            "to_stage",
            "occurred_at",
            "rule",
            "reason_code",
            "reason",
            "actor__user__email",
        )
    )
    for move in moves:
        latest.setdefault(move["lead_id"], move)
    now = timezone.now()
    rows = []
    for lead in leads:
        event_id = uuid.uuid4()  # one event per lead, shared by the endpoints
        payload = _json_safe(
            _stage_event(event_id, organization_id, now, lead, latest.get(lead["pk"]))
        )
        rows += [
            WebhookDelivery(
                organization_id=organization_id,
                endpoint=endpoint,
                event_id=event_id,
                event_type=EVENT_STAGE_CHANGED,
                lead_id=lead["pk"],
                payload=payload,
                next_attempt_at=now,
                created_at=now,
            )
            for endpoint in endpoints
        ]
    created = WebhookDelivery.objects.bulk_create(rows)
    ids = [d.pk for d in created]
    _enqueue(organization_id, ids)
    return ids


_LEAD_VALUES = (
    "pk",
    "email",
    "external_id",
    "first_name",
    "last_name",
    "stage",
    "owner__user__email",
)


def _queue_lead_events(
    organization_id: int, event_type: str, events: Sequence[tuple[int | None, Mapping[str, Any]]]
) -> list[int]:
    """One delivery per subscribed endpoint × event (lead id or None, data),
    signed, retried and logged like the stage events; sent after commit."""
    endpoints = [
        e for e in WebhookEndpoint.objects.filter(is_active=True) if e.wants_event(event_type)
    ]
    if not endpoints or not events:
        return []
    now = timezone.now()
    rows = []
    for lead_id, data in events:
        event_id = uuid.uuid4()
        payload = _json_safe(
            {
                "id": str(event_id),
                "type": event_type,
                "created_at": now.isoformat(),
                "organization_id": organization_id,
                "data": data,
            }
        )
        rows += [
            WebhookDelivery(
                organization_id=organization_id,
                endpoint=endpoint,
                event_id=event_id,
                event_type=event_type,
                lead_id=lead_id,
                payload=payload,
                next_attempt_at=now,
                created_at=now,
            )
            for endpoint in endpoints
        ]
    ids = [d.pk for d in WebhookDelivery.objects.bulk_create(rows)]
    _enqueue(organization_id, ids)
    return ids


def _lead_events_wanted() -> list[str]:
    endpoints = list(WebhookEndpoint.objects.filter(is_active=True))
    return [t for t in WEBHOOK_LEAD_EVENTS if any(e.wants_event(t) for e in endpoints)]


def _subscribed(organization_id: int, event_type: str) -> bool:
    """Whether an active endpoint wants this lead event (cached per organization:
    the single-lead path asks on every capture)."""
    return event_type in org_fact("lead_events", organization_id, _lead_events_wanted)


def webhooks_on_lead_created(organization_id: int, lead_ids: list[int]) -> list[int]:
    """leadflow.core.hooks.lead_created: a lead.created event per new lead."""
    if not lead_ids or not _subscribed(organization_id, "lead.created"):
        return []
    leads = Lead.objects.filter(pk__in=lead_ids).values(*_LEAD_VALUES)
    return _queue_lead_events(
        organization_id, "lead.created", [(r["pk"], {"lead": _lead_data(r)}) for r in leads]
    )


def webhooks_on_lead_updated(
    organization_id: int, changes: dict[int, dict[str, list[Any]]]
) -> list[int]:
    """leadflow.core.hooks.lead_updated: lead.updated per changed lead, with each
    changed field's old and new value (a constant number of statements)."""
    if not changes or not _subscribed(organization_id, "lead.updated"):
        return []
    leads = Lead.objects.filter(pk__in=list(changes)).values(*_LEAD_VALUES)
    events = [
        (
            lead["pk"],
            {
                "lead": _lead_data(lead),
                "changes": {
                    name: {"from": old, "to": new}
                    for name, (old, new) in changes[lead["pk"]].items()
                },
            },
        )
        for lead in leads
    ]
    return _queue_lead_events(organization_id, "lead.updated", events)


def webhooks_on_lead_merged(organization_id: int, kept_id: int, dropped_id: int) -> list[int]:
    """lead.merged: the surviving lead, and the id and identities of the merged one."""
    if not _subscribed(organization_id, "lead.merged"):
        return []
    rows = {
        r["pk"]: r for r in Lead.objects.filter(pk__in=[kept_id, dropped_id]).values(*_LEAD_VALUES)
    }
    data = {"lead": _lead_data(rows[kept_id]), "merged_lead": _lead_data(rows[dropped_id])}
    return _queue_lead_events(organization_id, "lead.merged", [(kept_id, data)])


def webhooks_on_lead_deleted(organization_id: int, leads: list[dict[str, Any]]) -> list[int]:
    """leadflow.core.hooks.lead_deleted: lead.deleted with the id and identities
    (the row is going, so the delivery keeps no link to it)."""
    if not leads or not _subscribed(organization_id, "lead.deleted"):
        return []
    events = [
        (
            None,
            {
                "lead": {
                    "id": lead["id"],
                    "external_id": lead.get("external_id"),
                    "stage": lead.get("stage", ""),
                }
            },
        )
        for lead in leads
    ]
    return _queue_lead_events(organization_id, "lead.deleted", events)


def _json_safe(payload: dict) -> dict:
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


def _enqueue(organization_id: int, delivery_ids: list[int]) -> None:
    if delivery_ids:
        enqueue_on_commit(
            "pipeline.webhook_dispatch", organization_id=organization_id, delivery_ids=delivery_ids
        )


@transaction.atomic
def webhook_send_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Queue a test event ("webhook.test") to the endpoint, active or not."""
    now = timezone.now()
    event_id = uuid.uuid4()
    delivery = WebhookDelivery.objects.create(
        organization_id=endpoint.organization_id,
        endpoint=endpoint,
        event_id=event_id,
        event_type=EVENT_PING,
        payload={
            "id": str(event_id),
            "type": EVENT_PING,
            "created_at": now.isoformat(),
            "organization_id": endpoint.organization_id,
            "data": {"message": "A test event from LeadFlow: your endpoint is reachable."},
        },
        next_attempt_at=now,
        created_at=now,
    )
    _enqueue(endpoint.organization_id, [delivery.pk])
    return delivery


@transaction.atomic
def webhook_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again, same event id, with a fresh retry budget."""
    current = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    if current.status == DeliveryStatus.PENDING and current.attempts:
        raise WebhookError("This delivery is still being retried; wait for it to finish.")
    now = timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now, delivered_at=None
    )
    _enqueue(current.organization_id, [delivery.pk])
    current.refresh_from_db()
    return current


# --- Sending ---------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-LeadFlow-Signature value a receiver recomputes to verify a request."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class _Refused(Exception):
    """The endpoint's host is not one we may connect to (final, not retried)."""


def _vetted_address(host: str, port: int) -> str:
    """Resolve the host; every address must be public (unless allowed), use the first."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"Could not resolve {host}: {exc.strerror or exc}") from exc
    addresses = [str(info[4][0]) for info in infos]  # IPv4/IPv6: the host part is a str
    if not _allow_private() and any(
        _blocked_ip(ipaddress.ip_address(a.split("%")[0])) for a in addresses
    ):
        raise _Refused(f"{host} resolves to a private, loopback or reserved address.")
    return addresses[0]


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    host = parts.hostname
    assert host is not None  # endpoint URLs are stored through webhook_url_clean: a host
    address = _vetted_address(host, port)
    conn: http.client.HTTPConnection
    if https:
        conn = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    # Connect to the address we vetted (TLS still checks the host name's certificate).
    # _create_connection is CPython's connect hook, not in typeshed.
    conn._create_connection = lambda _addr, t, src: socket.create_connection(  # type: ignore[attr-defined]
        (address, port), t, src
    )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(2048)
    finally:
        conn.close()


@dataclass(frozen=True)
class Attempt:
    """What one send did: the new status and, when it will be retried, after how long."""

    status: str
    retry_in: float | None = None
    skipped: bool = False


def _backoff(attempts: int) -> float:
    delay = min(BACKOFF_BASE_SECONDS * 2 ** (attempts - 1), BACKOFF_MAX_SECONDS)
    return delay * random.uniform(0.9, 1.1)  # spread the retries of a burst


def webhook_deliver(*, delivery_id: int) -> Attempt:
    """Send one delivery once and record how it went (no transaction is held while sending)."""
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return Attempt(status=delivery.status if delivery else "", skipped=True)
    endpoint = delivery.endpoint
    # Claim this attempt: a duplicate run of the same task finds the count moved on.
    claimed = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=delivery.attempts
    ).update(attempts=F("attempts") + 1, last_attempt_at=timezone.now())
    if not claimed:
        return Attempt(status=DeliveryStatus.PENDING, skipped=True)
    attempts = delivery.attempts + 1
    if not endpoint.is_active and delivery.event_type != EVENT_PING:
        return _record(delivery, attempts, None, "The endpoint was switched off.", final=True)
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-LeadFlow-Event": delivery.event_type,
        "X-LeadFlow-Delivery": str(delivery.event_id),
        "X-LeadFlow-Timestamp": str(timestamp),
        "X-LeadFlow-Signature": sign(endpoint.secret, timestamp, body),
    }
    try:
        code, answer = _post(endpoint.url, body, headers, _timeout())
    except _Refused as exc:
        return _record(delivery, attempts, None, str(exc), final=True)
    except TimeoutError:
        return _record(delivery, attempts, None, f"Timed out after {_timeout():g} s.")
    except (OSError, http.client.HTTPException) as exc:
        return _record(delivery, attempts, None, f"Connection failed: {exc or type(exc).__name__}")
    if 200 <= code < 300:
        return _record(delivery, attempts, code, "", succeeded=True)
    snippet = answer.decode("utf-8", "replace").strip()[:300]
    error = f"HTTP {code}" + (f": {snippet}" if snippet else "")
    if 300 <= code < 400:
        error = f"HTTP {code}: redirects are not followed; use the final URL."
    retry = code >= 500 or code in RETRY_STATUSES
    return _record(delivery, attempts, code, error, final=not retry)


def _record(
    delivery: WebhookDelivery,
    attempts: int,
    code: int | None,
    error: str,
    *,
    succeeded: bool = False,
    final: bool = False,
) -> Attempt:
    now = timezone.now()
    fields: dict[str, Any] = {"last_status_code": code, "last_error": error[:500]}
    retry_in = None
    if succeeded:
        fields |= {"status": DeliveryStatus.SUCCEEDED, "delivered_at": now, "next_attempt_at": None}
    elif final or attempts >= MAX_ATTEMPTS:
        fields |= {"status": DeliveryStatus.FAILED, "next_attempt_at": None}
    else:
        retry_in = _backoff(attempts)
        fields["next_attempt_at"] = now + timedelta(seconds=retry_in)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    return Attempt(status=fields.get("status", DeliveryStatus.PENDING), retry_in=retry_in)
