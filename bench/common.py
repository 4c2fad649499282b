"""Helpers shared by the benchmarks in bench/: Django set-up on a throwaway
test database, timing, and a cProfile summary.

A benchmark is a script, not a test: it prints its figures. Run it against
PostgreSQL through scripts/with_services.py, which sets DATABASE_URL/REDIS_URL.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django(*, production: bool = False, hosts: str = "localhost") -> None:
    """Django for a benchmark, the repository root first on sys.path. production:
    the deployed settings (DEBUG off, a throwaway secret key) answering `hosts`
    over plain HTTP, without collectstatic, as the measured pages are served."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
    if production:
        os.environ.setdefault("DJANGO_DEBUG", "0")
        os.environ.setdefault("DJANGO_SECRET_KEY", "bench-not-secret")
        os.environ.setdefault("ALLOWED_HOSTS", hosts)
        os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
        # whitenoise warns that collectstatic never ran; benches serve no static files.
        warnings.filterwarnings("ignore", message="No directory at")
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


def bench_parser(
    doc: str | None, *, leads: int | None = None, activities: int | None = None
) -> argparse.ArgumentParser:
    """A benchmark's argument parser, described by the first paragraph of its
    docstring; with the tenant-size arguments the data builders share when given
    (--leads: the small tenant; --activities-per-lead)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    if leads is not None:
        parser.add_argument("--leads", type=int, default=leads, help="small tenant")
    if activities is not None:
        parser.add_argument("--activities-per-lead", type=int, default=activities)
    return parser


def _needs(what: str, script: str) -> None:
    print(
        f"bench: needs {what}; run it through\n"
        f"  python scripts/with_services.py -- .venv/bin/python bench/{script}",
        file=sys.stderr,
    )


def postgres_url(script: str) -> str | None:
    """DATABASE_URL when it names PostgreSQL, else None (with a hint)."""
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        _needs("PostgreSQL", script)
        return None
    return database_url


def service_urls(script: str) -> tuple[str, str] | None:
    """DATABASE_URL and REDIS_URL of scripts/with_services.py, or None (with a hint)."""
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not redis_url:
        _needs("PostgreSQL and Redis", script)
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


def install_floor_urls(urlconf: str, perm) -> None:
    """A URL module `urlconf` of the real app plus the floor page: an org page that
    does the middleware's and `perm`'s work, then answers a constant (bench-only;
    never deployed)."""
    import types

    from django.http import HttpResponse
    from django.urls import include, path

    from accounts.decorators import org_view

    @org_view(perm)
    def floor(request):
        return HttpResponse("ok", content_type="text/plain")

    module = types.ModuleType(urlconf)
    module.urlpatterns = [
        path("o/<slug:org_slug>/bench/floor/", floor),
        path("", include("leadflow.urls")),
    ]
    sys.modules[urlconf] = module


def source_static_storages() -> dict:
    """The settings' STORAGES with static files read from the source tree: pages
    link them, and a bench never runs collectstatic."""
    from django.conf import settings

    return {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def server_version() -> str:
    """PostgreSQL's version, after giving this session's index builds room to sort."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0]
