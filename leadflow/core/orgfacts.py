"""Small per-organization facts the single-lead path would otherwise query on
every capture: "does any endpoint subscribe to lead events?", "has anyone been
erased here?". Kept in the shared Django cache (Redis in production).

A write that changes a fact forgets it once its transaction commits. The one
race left (a reader that loaded the fact before that commit and stores it after
the forget) is bounded by the short lifetime. A cache that is down costs a
query, never a failed request."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache
from django.db import transaction

T = TypeVar("T")
log = logging.getLogger(__name__)
TTL_SECONDS = 60


def _key(name: str, organization_id: int) -> str:
    return f"orgfact:{name}:{organization_id}"


def org_fact(name: str, organization_id: int, load: Callable[[], T]) -> T:
    """The cached fact, loaded (and stored) when missing."""
    key = _key(name, organization_id)
    try:
        found = cache.get(key)
    except Exception:
        log.warning("Cache unavailable; %s loaded from the database", key)
        return load()
    if found is not None:
        return found
    value = load()
    try:
        cache.set(key, value, TTL_SECONDS)
    except Exception:
        log.warning("Cache unavailable; %s not kept", key)
    return value


def org_fact_forget(name: str, organization_id: int) -> None:
    """Forget the fact now and again once the current transaction commits (a
    reader between the two may have stored what it read before the commit)."""

    def forget() -> None:
        try:
            cache.delete(_key(name, organization_id))
        except Exception:
            log.warning("Cache unavailable; %s not forgotten", _key(name, organization_id))

    forget()
    transaction.on_commit(forget)
