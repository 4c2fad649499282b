"""Reports may read from a PostgreSQL replica; everything else uses the primary.

With DATABASE_REPLICA_URL set, settings add a `replica` database alias. Code that
can live with a replica's few seconds of lag says so explicitly:

    with replica_reads():
        context = build(query)   # the report pages' selectors

Inside that block every read goes to the replica; outside it, and whenever the
primary is inside a transaction (it may have written: it must read its own
writes), reads stay on the primary. Writes always go to the primary, whatever
instance they came from. Tenant scoping is unchanged: django-scopes works on the
managers, not on the connection.

Without a replica alias (the quick start, most deployments) `replica_reads()`
does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"

_replica_reads: ContextVar[bool] = ContextVar("leadflow_replica_reads", default=False)


@contextmanager
def replica_reads() -> Iterator[None]:
    """Send this block's reads to the replica (when there is one)."""
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


def read_alias() -> str:
    """The database alias a read goes to right now."""
    if not _replica_reads.get() or REPLICA not in connections:
        return DEFAULT_DB_ALIAS
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    return REPLICA


class PrimaryReplicaRouter:
    """DATABASE_ROUTERS entry: reads per `read_alias()`, writes to the primary."""

    def db_for_read(self, model, **hints) -> str:
        return read_alias()

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # the replica holds the primary's rows

    def allow_migrate(self, db, app_label, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS
