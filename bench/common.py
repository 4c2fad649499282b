"""Helpers shared by the benchmarks in bench/: Django set-up on a throwaway
test database, timing, and a cProfile summary.

A benchmark is a script, not a test: it prints its figures. Run it against
PostgreSQL through scripts/with_services.py, which sets DATABASE_URL/REDIS_URL.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
    import django

    django.setup()


@contextmanager
def throwaway_database(*, require_postgres: bool = True) -> Iterator[str]:
    """Create a fresh database with every migration applied; drop it afterwards."""
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    if require_postgres and connection.vendor != "postgresql":
        sys.exit(
            "This benchmark measures PostgreSQL: run it through "
            "scripts/with_services.py (or set DATABASE_URL)."
        )
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        yield name
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
        teardown_test_environment()


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def profiled(fn: Callable[[], object]) -> tuple[float, object, pstats.Stats]:
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    try:
        result = fn()
    finally:
        profile.disable()
    return time.perf_counter() - started, result, pstats.Stats(profile)


def cumulative(stats: pstats.Stats, wanted: dict[str, tuple[str, str]]) -> dict[str, float]:
    """Cumulative seconds of named functions: label -> (file suffix, function name)."""
    found = dict.fromkeys(wanted, 0.0)
    for (filename, _line, function), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        for label, (suffix, name) in wanted.items():
            if function == name and filename.endswith(suffix):
                found[label] = max(found[label], ct)
    return found


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds else float("inf")


def service_urls(script: str) -> tuple[str, str] | None:
    """DATABASE_URL and REDIS_URL of scripts/with_services.py, or None (with a hint)."""
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not redis_url:
        print(
            "bench: needs PostgreSQL and Redis; run it through\n"
            f"  python scripts/with_services.py -- .venv/bin/python bench/{script}",
            file=sys.stderr,
        )
        return None
    return database_url, redis_url


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a bench server: production-like settings on loopback."""
    import secrets

    return {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        **extra,
    }
