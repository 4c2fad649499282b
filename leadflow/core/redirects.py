"""The one safe "back to" redirect.

Forms and links carry a `next` URL so an action can return to the page it was
started from. It comes from the request, so it is followed only when it points
at this site; anything else (another host, `//host`, a scheme such as
`javascript:`, control characters) falls back to the view's own page. Every app
reads `next` through these two functions and nowhere else (a test guards it).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme

NEXT_FIELD = "next"


def safe_next(request: HttpRequest, target: str | None = None) -> str:
    """`target` (default: the request's `next`, POST before GET) when it is a URL of
    this site, else ""."""
    if target is None:
        target = request.POST.get(NEXT_FIELD) or request.GET.get(NEXT_FIELD) or ""
    target = target.strip()
    if not target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return ""
    # A path or a URL of this site; not a bare word, which redirect() would try
    # to reverse as a view name (a 500).
    if not target.startswith(("/", "http://", "https://")):
        return ""
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return ""
    return target


def redirect_next(request: HttpRequest, default: str) -> HttpResponseRedirect:
    """Back to the request's `next` when it is ours, else to `default` (a URL)."""
    return HttpResponseRedirect(safe_next(request) or default)
