"""What a request answers when the database can't serve it: 503 with
Retry-After, never a 500. Django reconnects on the next request by itself
(CONN_HEALTH_CHECKS), so nothing needs a restart once the database is back.

Two kinds of fault, told apart by SQLSTATE:

- busy: a lock wait or statement ran past its timeout (55P03 lock_not_available,
  57014 query_canceled; SQLite's "database is locked") — retry in a few seconds;
- unavailable: the server is down, restarting or unreachable — retry in a minute.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.defaults import server_error

log = logging.getLogger(__name__)

DB_ERRORS = (OperationalError, InterfaceError)
_BUSY_STATES = {"55P03", "57014"}


@dataclass(frozen=True)
class DatabaseFault:
    code: str
    message: str
    retry_after: int
    log: str


def database_fault(exc: BaseException) -> DatabaseFault:
    state = getattr(exc.__cause__, "sqlstate", None)
    if state in _BUSY_STATES or "database is locked" in str(exc):
        return DatabaseFault(
            "busy",
            "The data this request needs is busy with another change; nothing was "
            "saved. Please retry shortly.",
            5,
            f"lock or statement timeout ({state or exc})",
        )
    return DatabaseFault(
        "service_unavailable",
        "The service is briefly unavailable; nothing was saved. Please retry in a minute.",
        30,
        f"database unavailable ({type(exc).__name__}: {str(exc).strip()[:200]})",
    )


def unavailable_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """The plain 503 (JSON for the API, a static page otherwise): built without
    the database, so without sessions, users or context processors."""
    fault = database_fault(exc)
    if request.path.startswith("/api/"):
        body = {"error": {"code": fault.code, "message": fault.message, "details": []}}
        response: HttpResponse = JsonResponse(body, status=503)
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(fault.retry_after)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    """A view that fails on the database answers 503 instead of 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DB_ERRORS):
            return None
        log.warning(
            "%s %s answered 503: %s",
            request.method,
            request.path,
            database_fault(exception).log,
        )
        return unavailable_response(request, exception)


def server_error_view(request, template_name: str = "500.html"):
    """handler500: a database fault raised outside any view (a middleware
    reading the session or the membership) is still a 503."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DB_ERRORS):
        return unavailable_response(request, exc)
    return server_error(request, template_name)
