"""Statements prepared on the PostgreSQL server, for the busiest single-lead writes.

PostgreSQL plans the single-lead scoring statement (the organization's rules
compiled into some 8,000 characters) in about 1 ms, three times as long as it
takes to run it; prepared once on the connection it runs in 0.3 ms
(bench/capture.py: the API create spent more CPU in PostgreSQL than in Python).
So those statements keep their text constant per configuration and send the
values that change (lead ids, times) as bound parameters through this cursor
(written %s-style like any Django SQL),
and psycopg prepares each on its first run (settings.py sets its threshold;
Django's own cursors bind client-side and never prepare). psycopg keeps them
per connection and deallocates the least recently used past `prepared_max`.

A prepared statement lives in a server session. Behind PgBouncer in
transaction pooling mode (DATABASE_TRANSACTION_POOLING, which also turns off
server-side cursors) the next transaction may run in another session, so
there `server_prepared()` is False and callers send the whole statement with
its values written in, as they do on SQLite.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache, lru_cache
from itertools import count
from typing import Any

from django.db import connection


def server_prepared() -> bool:
    """Whether statements may be prepared on the server for this connection:
    PostgreSQL, with psycopg's prepare threshold set (settings.py) and no
    transaction pooling in front."""
    settings = connection.settings_dict
    return (
        connection.vendor == "postgresql"
        and settings.get("OPTIONS", {}).get("prepare_threshold") is not None
        and not settings.get("DISABLE_SERVER_SIDE_CURSORS")
    )


@contextmanager
def preparing_cursor() -> Iterator[Any]:
    """A Django cursor (counted, logged and wrapped like any other) whose
    statements bind their values on the server, where psycopg prepares them."""
    from django.db.backends.postgresql.psycopg_any import register_tzloader
    from psycopg.pq import Format

    connection.ensure_connection()
    raw = _cursor_class()(connection.connection)
    # As Django's own create_cursor does: times come back in the connection's zone.
    tzloader = connection.connection.adapters.get_loader(_TIMESTAMPTZ_OID, Format.TEXT)
    if connection.timezone != tzloader.timezone:
        register_tzloader(connection.timezone, raw)
    with connection._prepare_cursor(raw) as cursor:  # type: ignore[attr-defined]  # as cursor()
        yield cursor


_TIMESTAMPTZ_OID = 1184


@cache
def _cursor_class() -> type:
    from django.db.backends.postgresql.base import (  # type: ignore[attr-defined]  # psycopg 3
        CursorMixin,
    )
    from psycopg import RawCursor

    class Preparing(CursorMixin, RawCursor):
        """psycopg's raw cursor (it takes $1, $2, … as they are) fed %s-style text."""

        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(numbered(query), params, prepare=prepare, binary=binary)

        def _send_query_prepared(self, name, pgq, *, binary=None):
            # psycopg records the query (where Django's query log and
            # CaptureQueriesContext read it) only when it is not prepared.
            self._query = pgq
            return super()._send_query_prepared(name, pgq, binary=binary)

    return Preparing


# A placeholder of Django's %-style SQL: %s, or %% for a percent sign.
PLACEHOLDER = re.compile(r"%[s%]")


def fill_placeholders(
    sql: str, params: Iterable[Any], each: Callable[[Any], str], percent: str
) -> str:
    """`sql` with its n-th %s replaced by each(params[n]) and %% by `percent`;
    the params must match the placeholders."""
    values = iter(params)
    out = PLACEHOLDER.sub(lambda m: percent if m.group() == "%%" else each(next(values)), sql)
    if next(values, PLACEHOLDER) is not PLACEHOLDER:
        raise ValueError("The statement's placeholders and values don't match")
    return out


@lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """The statement with its %s placeholders numbered ($1, $2, …) and %% as %.
    psycopg's own conversion parses a text this long again on every run (it
    caches only short ones); the statements here repeat, so this is kept."""
    numbers = (f"${n}" for n in count(1))
    return PLACEHOLDER.sub(lambda m: "%" if m.group() == "%%" else next(numbers), sql)
