"""The JSON API under /api/v1/ (django-ninja). Apps add their routers here.

Every error an endpoint answers is JSON of one shape,
``{"error": {"code", "message", "details"}}``, with the right status; no
traceback ever escapes. (Unknown URLs and wrong methods are refused by the URL
resolver / ninja before any endpoint runs, in their own plain format.)
"""

import logging
from functools import wraps

from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from accounts.api_auth import ApiError, error_body, invalid_request, register_error_renderer
from accounts.api_writes import IdempotentReplay, replay_response
from leadflow.api_docs import VendoredSwagger
from leadflow.core.dbfaults import database_fault
from leadflow.core.errors import LeadflowError
from leads.api import activities_router, leads_router
from pipeline.api import pipeline_router
from pipeline.api_followups import tasks_router

logger = logging.getLogger(__name__)

api = NinjaAPI(
    title="LeadFlow API",
    version="1",
    urls_namespace="api",
    docs_url="/docs",
    docs=VendoredSwagger(),
    description=(
        "Lead ingest, activity tracking and CRM sync for one organization. "
        "Authenticate with an API key (created on the API keys page) as "
        "`Authorization: Bearer lf_…` or `X-API-Key: lf_…`. Errors are "
        '`{"error": {"code": "...", "message": "...", "details": [...]}}`. '
        "A write applies entirely or not at all: a 5xx changed nothing. Send "
        "`Idempotency-Key: <unique key>` to retry a write safely; the same key "
        "and body replay the first answer for 24 hours (`Idempotent-Replayed: "
        "true`), another body is a 422, a retry while the first is running a "
        "409. A 503 (busy or unavailable) carries Retry-After."
    ),
)


@api.get("/health", auth=None, tags=["meta"])
def health(request):
    """Liveness probe for load balancers and docker-compose."""
    return {"status": "ok"}


# --- Error shapes ----------------------------------------------------------------


def _error(
    request: HttpRequest, status: int, code: str, message: str, details=None, headers=None
) -> HttpResponse:
    response = api.create_response(request, error_body(code, message, details), status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@api.exception_handler(ApiError)
def _api_error(request, exc: ApiError):
    return _error(request, exc.status, exc.code, exc.message, exc.details, exc.headers)


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    return _api_error(request, invalid_request(exc.errors))


@api.exception_handler(AuthenticationError)
def _unauthorized(request, exc):
    presented = "Authorization" in request.headers or "X-API-Key" in request.headers
    message = (
        "The API key is invalid or has been revoked."
        if presented
        else "An API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
    )
    return _error(request, 401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


@api.exception_handler(Http404)
def _not_found(request, exc):
    return _error(request, 404, "not_found", str(exc) or "Not found.")


_HTTP_CODES = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    if exc.status_code == 400 and str(exc).startswith("Cannot parse request body"):
        return _error(request, 400, "malformed_json", "The request body is not valid JSON.")
    code = _HTTP_CODES.get(exc.status_code, "error")
    return _error(request, exc.status_code, code, str(exc))


@api.exception_handler(LeadflowError)
def _domain_error(request, exc: LeadflowError):
    return _error(request, 400, "invalid_request", str(exc))


@api.exception_handler(IdempotentReplay)
def _replay(request, exc: IdempotentReplay):
    return replay_response(exc.record)


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def _database_unavailable(request, exc):
    # The database is down, or a lock/statement timeout fired: the write was
    # rolled back, so the client may simply retry.
    fault = database_fault(exc)
    logger.warning("API %s %s answered 503: %s", request.method, request.path, fault.log)
    return _error(
        request,
        503,
        fault.code,
        fault.message,
        headers={"Retry-After": str(fault.retry_after)},
    )


@api.exception_handler(Exception)
def _server_error(request, exc: Exception):
    # Last resort: log it, and still answer in the API's shape.
    logger.exception("Unhandled API error on %s %s", request.method, request.path)
    return _error(request, 500, "server_error", "Something went wrong on our side.")


def _render_api_errors(run):
    """Around every operation, before ninja parses the request: an ApiError
    raised there (a refused JSON body, accounts.api_auth.json_body) is answered
    like one a handler raises."""

    @wraps(run)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return run(request, *args, **kwargs)
        except ApiError as exc:
            return api.on_exception(request, exc)

    return wrapper


# --- Routers ---------------------------------------------------------------------

api.add_decorator(_render_api_errors, mode="view")  # before the routers: they inherit it

api.add_router("/leads", leads_router, tags=["leads"])
api.add_router("/activities", activities_router, tags=["activities"])
api.add_router("/leads", pipeline_router, tags=["pipeline"])
api.add_router("/tasks", tasks_router, tags=["tasks"])

# The routers' own plumbing (accounts.api_auth) answers errors through this API.
register_error_renderer(api.on_exception)
