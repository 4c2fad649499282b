"""The mail provider's inbound webhook: POST /inbound/mail/<key>/ with a JSON
reply, signed (nurture.services.inbound says how). Answers JSON: 202 kept
(matched or unmatched), 200 a duplicate, 401 a bad/missing/stale signature,
400 a bad payload, 404 an unknown key."""

from __future__ import annotations

import logging

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.decorators import public_view
from leadflow.core.tenancy import tenant_scope
from nurture.services import inbound as inbound_services

logger = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


@public_view
@csrf_exempt
@never_cache
@require_POST
def inbound_mail(request, key: str):
    mailbox = inbound_services.mailbox_for_key(key=key)
    if mailbox is None:
        # No organization to keep a record for: the log line is the trace.
        logger.warning(
            "Inbound mail refused: unknown key (from %s)", request.META.get("REMOTE_ADDR")
        )
        return _error(404, "not_found", "No inbound mailbox at this address.")
    body, remote_addr = request.body, request.META.get("REMOTE_ADDR", "")
    with tenant_scope(mailbox.organization_id):
        if len(body) > inbound_services.MAX_BODY_BYTES:
            inbound_services.inbound_reject(
                mailbox=mailbox, reason="body too large", remote_addr=remote_addr
            )
            return _error(413, "too_large", "The reply is too large.")
        try:
            payload = inbound_services.inbound_verify(
                mailbox=mailbox,
                headers=request.headers,
                body=body,
                remote_addr=remote_addr,
            )
        except inbound_services.InboundRejected as exc:
            code = "bad_signature" if exc.status == 401 else "bad_payload"
            return _error(exc.status, code, str(exc))
        received = inbound_services.inbound_receive(mailbox=mailbox, payload=payload, body=body)
    inbound = received.inbound
    return JsonResponse(
        {"id": inbound.pk, "status": inbound.status, "duplicate": received.duplicate},
        status=200 if received.duplicate else 202,
    )
