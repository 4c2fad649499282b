"""The client's IP address, for per-visitor rate limits (hosted forms, log-in)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The visitor's address. Behind a proxy, REMOTE_ADDR is the proxy's, so
    LEADS_CLIENT_IP_HEADER (e.g. "HTTP_X_FORWARDED_FOR") names the header it
    sets; the proxy appends what it saw, so the last entry is the trusted one."""
    header = getattr(settings, "LEADS_CLIENT_IP_HEADER", "")
    if header:
        forwarded = [p.strip() for p in request.META.get(header, "").split(",") if p.strip()]
        if forwarded:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR", "")
