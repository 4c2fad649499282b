"""API writes are all-or-nothing, bounded in time, and safe to retry.

- Every unsafe request (POST, PUT, PATCH, DELETE) authenticated by an API key
  runs in one transaction, opened once the key is known. An answer of 5xx
  rolls it back: a request the client saw fail has changed nothing, so no
  sweep or retry can apply it later or twice.
- On PostgreSQL the transaction waits at most ``LEADFLOW_API_LOCK_TIMEOUT_MS``
  for a row lock and runs statements for at most
  ``LEADFLOW_API_STATEMENT_TIMEOUT_MS`` (``SET LOCAL``: this transaction only,
  so it also works behind PgBouncer in transaction mode). A timeout is a 503
  with Retry-After, well before the WSGI server's worker timeout.
- ``Idempotency-Key: <key>`` makes a retry safe: the answer is stored per
  organization and key, with a fingerprint of the request, in the same
  transaction as the write. The same key and request again replays the stored
  answer (``Idempotent-Replayed: true``); the same key with another request is
  a 422; while the first request is still running the duplicate gets a 409.
"""

from __future__ import annotations

import hashlib
import json
import logging
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from psycopg import ClientCursor

from accounts.models import ApiIdempotencyKey
from leadflow.core.errors import ApiError

log = logging.getLogger(__name__)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
IDEMPOTENCY_TTL = timedelta(hours=24)  # a key can be reused after this
BUSY_RETRY_AFTER = 2  # seconds: a concurrent duplicate or a lock held elsewhere


def _setting_ms(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


@contextmanager
def write_transaction():
    """One transaction with bounded lock waits and statement times (PostgreSQL).

    The timeouts are set in the same round trip as the transaction's first
    statement (a simple-query batch: set_config, then the statement, whose
    result the cursor is moved to), or before it on its own when that
    statement can't be batched (executemany, a statement prepared on the
    server). A timeout set this way lasts until the transaction ends."""
    with transaction.atomic():
        if connection.vendor != "postgresql":
            yield
            return
        timeouts = (
            "SELECT set_config('lock_timeout', '{}ms', true),"
            " set_config('statement_timeout', '{}ms', true)"
        ).format(
            int(_setting_ms("LEADFLOW_API_LOCK_TIMEOUT_MS", 5000)),
            int(_setting_ms("LEADFLOW_API_STATEMENT_TIMEOUT_MS", 15000)),
        )
        pending = [True]

        def first_statement(execute, sql, params, many, context):
            if not pending[0]:
                return execute(sql, params, many, context)
            pending[0] = False
            raw = context["cursor"].cursor
            if many or not isinstance(raw, ClientCursor):
                # executemany, a named (server-side) cursor or one prepared on
                # the server: the timeouts go first, through a cursor of its own.
                with context["connection"].cursor() as cursor:
                    cursor.execute(timeouts)
                return execute(sql, params, many, context)
            result = execute(f"{timeouts}; {sql}", params, many, context)
            raw.nextset()  # the statement's own result
            return result

        with connection.execute_wrapper(first_statement):
            yield


class IdempotentReplay(Exception):
    """The stored answer of an earlier request with the same key and body."""

    def __init__(self, record: ApiIdempotencyKey) -> None:
        super().__init__(record.key)
        self.record = record


def replay_response(record: ApiIdempotencyKey) -> HttpResponse:
    response = HttpResponse(
        json.dumps(record.response_body),
        status=record.status_code,
        content_type="application/json; charset=utf-8",
    )
    response["Idempotent-Replayed"] = "true"
    return response


def _fingerprint(request: HttpRequest) -> str:
    body = getattr(request, "json_body", None)
    if body is not None:
        raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    else:
        raw = request.body
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(raw)
    return digest.hexdigest()


def _try_lock(organization_id: int, key: str) -> bool:
    """A transaction-scoped advisory lock per (organization, key) on PostgreSQL, so a
    duplicate arriving while the first request runs is told so at once (SQLite
    runs one writer at a time: the duplicate waits and then sees the answer)."""
    if connection.vendor != "postgresql":
        return True
    digest = hashlib.sha256(f"api-idempotency:{organization_id}:{key}".encode()).digest()
    lock_id = int.from_bytes(digest[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock_id])
        return bool(cursor.fetchone()[0])


def idempotency_begin(request: HttpRequest, organization_id: int) -> None:
    """Called inside the write transaction, in the key's tenant scope. Raises
    IdempotentReplay or an ApiError (400/409/422) when the request must not run;
    otherwise notes the key on the request for idempotency_finish."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return
    if not (0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable()):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"The {IDEMPOTENCY_HEADER} header must be 1 to {MAX_KEY_LENGTH} printable "
            "ASCII characters (a UUID is a good choice).",
        )
    fingerprint = _fingerprint(request)
    if not _try_lock(organization_id, key):
        raise ApiError(
            409,
            "idempotency_key_in_use",
            "A request with this Idempotency-Key is still being processed; "
            "retry once it has finished to get its answer.",
            headers={"Retry-After": str(BUSY_RETRY_AFTER)},
        )
    record = ApiIdempotencyKey.objects.filter(key=key).first()
    if record is not None and record.created_at < timezone.now() - IDEMPOTENCY_TTL:
        record.delete()
        record = None
    if record is not None:
        if record.fingerprint != fingerprint:
            raise ApiError(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was already used for a different request; "
                "use a new key for a new request.",
            )
        raise IdempotentReplay(record)
    request._idempotency = (organization_id, key, fingerprint)


def idempotency_finish(request: HttpRequest, response: HttpResponse) -> None:
    """Store the answer under the request's key, in the request's transaction."""
    pending = getattr(request, "_idempotency", None)
    if pending is None or response.status_code >= 500:
        return
    organization_id, key, fingerprint = pending
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        return  # not a JSON answer: nothing to replay faithfully
    try:
        with transaction.atomic():
            ApiIdempotencyKey.objects.create(
                organization_id=organization_id,
                key=key,
                fingerprint=fingerprint,
                status_code=response.status_code,
                response_body=body,
            )
    except IntegrityError:
        # Only without the advisory lock (SQLite): a duplicate finished first.
        log.warning("Idempotency-Key %r stored concurrently; keeping the first answer", key)


def idempotency_keys_purge(*, now=None) -> int:
    """Forget answers older than the retention (run by beat, across tenants)."""
    cutoff = (now or timezone.now()) - IDEMPOTENCY_TTL
    deleted, _ = ApiIdempotencyKey._base_manager.filter(created_at__lt=cutoff).delete()
    return deleted
