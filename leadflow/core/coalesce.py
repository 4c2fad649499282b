"""Coalesced background work: ids gathered per organization, one task per batch.

Publishing a Celery task costs more CPU than a single-lead create's own
statements, so idempotent work that is cheap per id (the duplicate refresh)
is asked for by pushing the ids onto a Redis list, and the drain task is
published only when none is pending (a flag set NX, with a TTL so a lost
message can't hold it). The drain deletes the flag first, then takes the whole
list in one MULTI: an id pushed before that take is in it, and one pushed
after it finds the flag gone and publishes the next drain. The push runs once
the writer's transaction has committed, so the drain always sees the rows.

Where ids can't be pushed (the quick start's file cache, a Redis outage) they
travel in a task message of their own, as before. Ids whose drain message was
lost wait for the owner's periodic sweep, which takes them too (`take`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import transaction
from redis.exceptions import RedisError

from leadflow.core.tenancy import publish

log = logging.getLogger(__name__)

IDS_TTL = 24 * 3600  # ids nobody drained for a day belong to a deleted organization


@dataclass(frozen=True)
class Coalesced:
    """Work on ids of one organization, done by `drain_task(organization_id)`
    (which calls `take`) or, without Redis, by `direct_task(organization_id,
    lead_ids)`. `delay` seconds of pushes share one drain."""

    name: str
    drain_task: str
    direct_task: str
    delay: float = 1.0
    flag_ttl: int = 30

    def request_on_commit(self, organization_id: int, ids: Iterable[int]) -> None:
        """Ask for the work on these ids once the current transaction commits."""
        ids = sorted(set(ids))
        if ids:
            transaction.on_commit(lambda: self._push(organization_id, ids))

    def take(self, organization_id: int) -> list[int]:
        """The ids pushed so far (and none twice), emptying the list; [] without Redis."""
        client, ids_key, flag_key = self._redis(organization_id)
        if client is None:
            return []
        client.delete(flag_key)  # before the take: a later push arms a new drain
        pipeline = client.pipeline(transaction=True)
        pipeline.lrange(ids_key, 0, -1)
        pipeline.delete(ids_key)
        taken, _ = pipeline.execute()
        return sorted({int(value) for value in taken})

    def put_back(self, organization_id: int, ids: list[int]) -> None:
        """Return taken ids (their drain failed and will be retried)."""
        client, ids_key, _ = self._redis(organization_id)
        if client is not None and ids:
            client.rpush(ids_key, *ids)
            client.expire(ids_key, IDS_TTL)

    def _push(self, organization_id: int, ids: list[int]) -> None:
        client, ids_key, flag_key = self._redis(organization_id)
        try:
            if client is None:
                raise _NoRedis
            pipeline = client.pipeline(transaction=False)
            pipeline.rpush(ids_key, *ids)
            pipeline.expire(ids_key, IDS_TTL)
            pipeline.set(flag_key, 1, ex=self.flag_ttl, nx=True)
            armed = pipeline.execute()[-1]
        except (_NoRedis, RedisError, OSError):
            if client is not None:
                log.warning("Redis unavailable; %s ids sent in a task", self.name, exc_info=True)
            publish(self.direct_task, organization_id=organization_id, lead_ids=ids)
            return
        if armed:
            publish(self.drain_task, countdown=self.delay, organization_id=organization_id)

    def _redis(self, organization_id: int) -> tuple[Any, str, str]:
        cache = caches["default"]
        ids_key = cache.make_and_validate_key(f"coalesce:{self.name}:{organization_id}")
        flag_key = f"{ids_key}:armed"
        if not isinstance(cache, RedisCache):
            return None, ids_key, flag_key
        client = cache._cache.get_client(ids_key, write=True)  # type: ignore[attr-defined]
        return client, ids_key, flag_key


class _NoRedis(Exception):
    pass
