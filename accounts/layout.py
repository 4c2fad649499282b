"""What every page's layout computes, once per process: static file URLs and
reversed URLs (accounts/templatetags/layout.py, accounts/navigation.py).

A memo is kept per script prefix and URLconf (both are per request in Django,
though constant in a deployment) and emptied when a setting changes (tests
override STORAGES, STATIC_URL and ROOT_URLCONF)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import TypeVar

from django.core.signals import setting_changed
from django.urls import get_script_prefix, get_urlconf, reverse

from leadflow.core.rowhtml import IdUrl

T = TypeVar("T")
_MEMO: dict[tuple, object] = {}
# What the URL patterns' <slug:org_slug> takes: anything else is reversed as given.
_SLUG = re.compile(r"[-a-zA-Z0-9_]+")
_SENTINEL = "org-slug-0a7e5c1d"


def memo(key: tuple, compute: Callable[[], T]) -> T:
    full = (*key, get_script_prefix(), get_urlconf())
    try:
        return _MEMO[full]  # type: ignore[return-value]
    except KeyError:
        value = _MEMO[full] = compute()
        return value


def _is_slug(value) -> bool:
    return isinstance(value, str) and _SLUG.fullmatch(value) is not None


def _cut(name: str) -> list[str] | None:
    url = reverse(name, kwargs={"org_slug": _SENTINEL})
    return url.split(_SENTINEL) if url.count(_SENTINEL) == 1 else None


def org_url(name: str, slug: str) -> str:
    """`reverse(name, kwargs={"org_slug": slug})`, the pattern reversed once per process."""
    parts = memo(("org_url", name), lambda: _cut(name))
    if parts is None or not _is_slug(slug):
        return reverse(name, kwargs={"org_slug": slug})
    return slug.join(parts)


def org_id_url(viewname: str, id_kwarg: str, slug: str) -> IdUrl:
    """`IdUrl(viewname, id_kwarg, org_slug=slug)`, the pattern reversed once per process."""
    template = memo(
        ("org_id_url", viewname, id_kwarg),
        lambda: IdUrl(viewname, id_kwarg, org_slug=_SENTINEL),
    )
    parts = template.parts
    if parts is None or "".join(parts).count(_SENTINEL) != 1 or not _is_slug(slug):
        return IdUrl(viewname, id_kwarg, org_slug=slug)
    url = copy.copy(template)
    url.kwargs = {"org_slug": slug}
    url.parts = [part.replace(_SENTINEL, slug) for part in parts]
    return url


def forget(**kwargs) -> None:
    _MEMO.clear()


setting_changed.connect(forget, dispatch_uid="accounts-layout-memo")
