"""The plumbing every authenticated /api/v1/ endpoint shares: API-key
authentication (``Authorization: Bearer <key>`` or ``X-API-Key: <key>``), the
per-key rate limit, the tenant scope, the JSON body limit, and the one error
shape: ``{"error": {"code", "message", "details"}}``.

Tenancy: a key belongs to one organization. `tenant_router()` wraps each
operation so that, once the key has authenticated, the whole operation —
handler, response serialization and error handlers — runs inside
`tenant_scope(key.organization_id)`, and the scope is closed afterwards.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from django.db import InterfaceError, OperationalError, transaction
from django.http import HttpRequest, HttpResponse
from django_ratelimit import ALL
from django_ratelimit import core as ratelimit_core
from django_ratelimit.core import get_usage
from ninja import Router
from ninja.security import APIKeyHeader, HttpBearer

from accounts.api_writes import (
    UNSAFE_METHODS,
    idempotency_begin,
    idempotency_finish,
    write_transaction,
)
from accounts.apikeys import apikey_authenticate
from accounts.models import ApiKey
from leadflow.core import orgfacts
from leadflow.core.badinput import DEPTH_MESSAGE, json_problem
from leadflow.core.errors import ApiError
from leadflow.core.tenancy import tenant_scope

log = logging.getLogger(__name__)
DEFAULT_RATE_LIMIT = "600/m"
KEY_FORMAT = "lf_<prefix>_<secret>"

# ApiError lives in leadflow.core.errors (api_writes raises it too); endpoints import it here.

# The API's error renderer (NinjaAPI.on_exception), for what fails around the
# operation (its COMMIT). leadflow.api, which composes the API above the apps,
# registers it, so this module never imports upward.
_render_error: Callable[[HttpRequest, Exception], HttpResponse] | None = None


def register_error_renderer(render: Callable[[HttpRequest, Exception], HttpResponse]) -> None:
    global _render_error
    _render_error = render


def render_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    if _render_error is None:
        raise ImproperlyConfigured("No API error renderer: leadflow.api registers it on import")
    return _render_error(request, exc)


class RateLimited(ApiError):
    def __init__(self, retry_after: int, limit: str) -> None:
        super().__init__(
            429,
            "rate_limited",
            f"Too many requests for this API key (limit {limit}). "
            f"Retry after {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
        )


def error_body(code: str, message: str, details: list | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def _field_name(loc) -> str:
    """("body", "payload", "activities", 3, "kind") -> "activities.3.kind"."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
        if parts and parts[0] in ("payload", "filters"):  # the handlers' parameter names
            parts = parts[1:]
    return ".".join(str(p) for p in parts)


def validation_details(errors) -> list[dict]:
    """Pydantic/ninja validation errors as [{"field", "code", "message"}]."""
    return [
        {
            "field": _field_name(e.get("loc", ())),
            "code": e.get("type", ""),
            "message": e["msg"].removeprefix("Value error, "),
        }
        for e in errors
    ]


def invalid_request(errors) -> ApiError:
    """A 400 naming every invalid field, from pydantic/ninja validation errors."""
    details = validation_details(errors)
    fields = ", ".join(sorted({d["field"] for d in details if d["field"]}))
    if fields:
        message = f"Invalid value(s) in {fields}."
    else:
        message = details[0]["message"] if details else "Invalid request."
    return ApiError(400, "invalid_request", message, details)


# --- Authentication ------------------------------------------------------------


def _rate_limit() -> str:
    return getattr(settings, "LEADFLOW_API_RATE_LIMIT", DEFAULT_RATE_LIMIT)


def _usage(request: HttpRequest, key: ApiKey, rate: str) -> dict[str, Any] | None:
    """django-ratelimit's get_usage for this key, counting this request. On
    Redis its add-then-increment costs three round trips (SET NX, EXISTS,
    INCRBY); the same count under the same key and window costs one here (a
    pipeline of SET NX EX and INCR). A write also reads its organization's
    facts in that round trip (leadflow.core.orgfacts; request._org_facts)."""
    cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    if not isinstance(cache, RedisCache) or not getattr(settings, "RATELIMIT_ENABLE", True):
        return get_usage(
            request, group="api-key", key=lambda group, req: key.prefix, rate=rate, increment=True
        )
    limit, period = ratelimit_core._split_rate(rate)
    window = ratelimit_core._get_window(key.prefix, period)
    name = ratelimit_core._make_cache_key("api-key", window, rate, key.prefix, ALL)
    name = cache.make_and_validate_key(name)
    client = cache._cache.get_client(name, write=True)
    pipeline = client.pipeline(transaction=False)
    pipeline.set(name, 0, ex=period + ratelimit_core.EXPIRATION_FUDGE, nx=True)
    pipeline.incr(name)
    facts = []
    if request.method in UNSAFE_METHODS and cache is caches["default"]:
        facts = orgfacts.fact_keys(key.organization_id)
        if facts:
            pipeline.mget([cache.make_and_validate_key(fact) for fact in facts])
    replies = pipeline.execute()
    count = replies[1]
    if facts:  # decoded as the cache's own get_many does
        loads = cache._cache._serializer.loads
        values = zip(facts, replies[2], strict=True)
        request._org_facts = {fact: loads(v) for fact, v in values if v is not None}
    return {
        "count": count,
        "limit": limit,
        "should_limit": count > limit,
        "time_left": window - int(time.time()),
    }


def _enforce_rate_limit(request: HttpRequest, key: ApiKey) -> None:
    rate = _rate_limit()
    try:
        usage = _usage(request, key, rate)
    except Exception:  # the cache (Redis) is down: serve the request unlimited
        log.warning("Rate-limit cache down; API key %s not limited", key.prefix, exc_info=True)
        return
    if usage is None:  # rate limiting switched off (RATELIMIT_ENABLE = False)
        return
    if usage["should_limit"]:
        raise RateLimited(retry_after=max(1, int(usage["time_left"])), limit=rate)
    request._api_rate_usage = usage


def _authenticate(request: HttpRequest, raw: str | None) -> ApiKey | None:
    key = apikey_authenticate(raw)
    if key is None:
        return None
    _enforce_rate_limit(request, key)
    stack = getattr(request, "_api_scope_stack", None)
    if stack is None:
        # Fail closed: an operation authenticated by key must be built by tenant_router().
        raise ImproperlyConfigured("API-key auth used outside tenant_router()")
    stack.enter_context(tenant_scope(key.organization_id))
    found = getattr(request, "_org_facts", None)
    if found is not None:  # read with the rate limit's count: the ingest reads no more
        stack.enter_context(orgfacts.org_facts_prefetched(key.organization_id, found=found))
    request.api_key = key
    if request.method in UNSAFE_METHODS:
        # Opened after the key's own bookkeeping, so that never holds a lock for long.
        stack.enter_context(write_transaction())
        request._api_write = True
        idempotency_begin(request, key.organization_id)
    return key


class ApiKeyBearer(HttpBearer):
    openapi_bearerFormat = KEY_FORMAT
    openapi_description = (
        "An organization's API key as a bearer token: `Authorization: Bearer lf_…`."
    )

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return _authenticate(request, token)


class ApiKeyHeader(APIKeyHeader):
    param_name = "X-API-Key"
    openapi_description = "An organization's API key in the `X-API-Key` header."

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        return _authenticate(request, key)


API_KEY_AUTH = [ApiKeyBearer(), ApiKeyHeader()]


def _scoped_run(run: Callable) -> Callable:
    """Open an exit stack around the whole operation; authentication enters the
    tenant scope (and, for a write, its transaction) on it, and it is closed
    when the response is complete. A write answered 5xx is rolled back."""

    @wraps(run)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any):
        try:
            with ExitStack() as stack:
                request._api_scope_stack = stack
                response = run(request, *args, **kwargs)
                if getattr(request, "_api_write", False):
                    if response.status_code >= 500:
                        transaction.set_rollback(True)
                    else:
                        idempotency_finish(request, response)
        except (OperationalError, InterfaceError) as exc:  # the COMMIT itself failed
            response = render_error(request, exc)
        usage = getattr(request, "_api_rate_usage", None)
        if usage is not None:
            response["X-RateLimit-Limit"] = str(usage["limit"])
            response["X-RateLimit-Remaining"] = str(max(0, usage["limit"] - usage["count"]))
        return response

    return wrapper


def tenant_router(**kwargs: Any) -> Router:
    """A ninja Router whose operations need an API key and run in its organization's scope."""
    router = Router(auth=API_KEY_AUTH, **kwargs)
    router.add_decorator(_scoped_run, mode="view")
    return router


# --- Request bodies ------------------------------------------------------------


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def read_json_body(request: HttpRequest, max_bytes: int) -> Any:
    """The request's JSON document, read at most max_bytes; ApiError (413/400) otherwise."""
    too_large = ApiError(
        413,
        "payload_too_large",
        f"The request body exceeds the limit of {max_bytes:,} bytes for this endpoint.",
    )
    if hasattr(request, "_body"):
        body = request._body
    else:
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared:
            try:
                length = int(declared)
            except ValueError as exc:
                raise ApiError(400, "bad_request", "Invalid Content-Length header.") from exc
            if length > max_bytes:
                raise too_large
        # Read it ourselves (bounded) so Django's global upload limit doesn't apply.
        body = request.read(max_bytes + 1)
        request._body = body  # ninja and request.body reuse it
    if len(body) > max_bytes:
        raise too_large
    if not body.strip():
        raise ApiError(400, "malformed_json", "The request body is empty; send a JSON document.")
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise ApiError(400, "malformed_json", "The request body is not UTF-8 text.") from exc
    except RecursionError as exc:
        raise ApiError(400, "malformed_json", DEPTH_MESSAGE) from exc
    except ValueError as exc:
        raise ApiError(400, "malformed_json", f"The request body is not valid JSON: {exc}") from exc
    problem = json_problem(data)
    if problem:
        code = "malformed_json" if problem == DEPTH_MESSAGE else "invalid_text"
        raise ApiError(400, code, problem)
    return data


def json_body(max_bytes: int) -> Callable:
    """Operation decorator (use with ninja's decorate_view): enforce a body size
    limit and valid JSON before ninja parses anything; the parsed document is
    left on ``request.json_body``. A refused body raises ApiError, which the
    API (leadflow.api) answers in its error shape."""

    def decorate(run: Callable) -> Callable:
        @wraps(run)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any):
            request.json_body = read_json_body(request, max_bytes)
            return run(request, *args, **kwargs)

        return wrapper

    return decorate
