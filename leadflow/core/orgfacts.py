"""Small per-organization facts the single-lead path would otherwise query on
every capture: "does any endpoint subscribe to lead events?", "has anyone been
erased here?", "which activity kinds can make a PQL?", "are there dynamic
lists?". Kept in the shared Django cache (Redis in production).

A write that changes a fact forgets it once its transaction commits. The one
race left (a reader that loaded the fact before that commit and stores it after
the forget) is bounded by the short lifetime. A cache that is down costs a
query, never a failed request.

`org_facts_prefetched` reads every fact this process has asked for so far in
one cache round trip (an ingest asks for four): inside it, `org_fact` answers
from what was read, and a forget inside it is seen at once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import transaction

T = TypeVar("T")
log = logging.getLogger(__name__)
TTL_SECONDS = 60

# The names of the facts asked for in this process (what a prefetch reads).
_names: set[str] = set()
# Inside org_facts_prefetched: cache key -> value read (_MISSING: not cached).
_MISSING = object()
_prefetched: ContextVar[dict[str, Any] | None] = ContextVar("org_facts", default=None)


def _key(name: str, organization_id: int) -> str:
    return f"orgfact:{name}:{organization_id}"


def _store(key: str, value: Any, ttl: int) -> None:
    try:
        cache.set(key, value, ttl)
    except Exception:
        log.warning("Cache unavailable; %s not kept", key)


def kept(key: str, load: Callable[[], T], ttl: int = TTL_SECONDS) -> T:
    """The value kept under `key`, loaded (and kept `ttl` seconds) when missing.
    A cache that is down costs the load, never the caller."""
    try:
        found = cache.get(key)
    except Exception:
        log.warning("Cache unavailable; %s loaded from the database", key)
        return load()
    if found is not None:
        return found
    value = load()
    _store(key, value, ttl)
    return value


def forget_keys(keys: list[str], *, at_commit: bool = True) -> None:
    """Forget kept values now and (at_commit) again once the current transaction
    commits: a reader between the two may have stored what it read before."""
    if not keys:
        return

    def forget() -> None:
        try:
            cache.delete_many(keys)
        except Exception:
            log.warning("Cache unavailable; %s not forgotten", ", ".join(keys))

    forget()
    if at_commit:
        transaction.on_commit(forget)


def org_fact(name: str, organization_id: int, load: Callable[[], T]) -> T:
    """The cached fact, loaded (and stored) when missing."""
    _names.add(name)
    key = _key(name, organization_id)
    prefetched = _prefetched.get()
    found: Any = prefetched.get(key) if prefetched is not None else None
    if found is not None and found is not _MISSING:
        return found
    if found is _MISSING:  # the prefetch asked: not in the cache
        value = load()
        _store(key, value, TTL_SECONDS)
    else:
        value = kept(key, load)
    if prefetched is not None:
        prefetched[key] = value
    return value


def fact_keys(organization_id: int) -> list[str]:
    """The cache keys a prefetch reads: every fact this process has asked for."""
    return [_key(name, organization_id) for name in sorted(_names)]


@contextmanager
def org_facts_prefetched(
    organization_id: int, found: dict[str, Any] | None = None
) -> Iterator[None]:
    """Read the organization's known facts in one round trip for the block
    (`found`: the values of fact_keys a caller read in a round trip of its own)."""
    if _prefetched.get() is not None:  # already inside one
        yield
        return
    keys = fact_keys(organization_id)
    if found is None:
        try:
            found = cache.get_many(keys) if keys else {}
        except Exception:
            log.warning("Cache unavailable; organization facts loaded one by one")
            found = {}
    token = _prefetched.set({key: found.get(key, _MISSING) for key in keys})
    try:
        yield
    finally:
        _prefetched.reset(token)


def org_fact_forget(name: str, organization_id: int, *, at_commit: bool = True) -> None:
    """Forget the fact now and again once the current transaction commits (a
    reader between the two may have stored what it read before the commit;
    at_commit=False when a reader in this transaction reads the change itself)."""
    key = _key(name, organization_id)
    prefetched = _prefetched.get()
    if prefetched is not None:
        prefetched.pop(key, None)
    forget_keys([key], at_commit=at_commit)
