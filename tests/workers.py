"""Start a real Celery worker process against the test database and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from leadflow.celery import app as celery_app
from leadflow.core.queues import group_queues

ROOT = Path(__file__).resolve().parent.parent


def require_real_services() -> None:
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("needs PostgreSQL and Redis (run through `make test`)")


def test_database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@contextmanager
def celery_worker(
    var_dir: Path,
    *,
    extra_env: dict | None = None,
    concurrency: int = 2,
    beat: bool = False,
    group: str | None = None,
):
    """A worker on the test database (with embedded beat if asked); yields the
    Popen, stops it on exit. Without a group it consumes every queue, like the
    quick start's; with one, that group's queues only, like docker-compose's."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        LEADFLOW_VAR_DIR=str(var_dir),
        CELERY_TASK_ALWAYS_EAGER="false",
        CONN_MAX_AGE="0",
    )
    env.pop("EMAIL_URL", None)  # mail goes to var_dir/mail as files
    env.update(extra_env or {})
    queues = []
    if group:
        queues = [f"--queues={','.join(group_queues(group, settings.CELERY_ORG_SHARDS))}"]
        queues.append(f"--hostname={group}@%h")
    log = open(var_dir / f"worker{'-' + group if group else ''}.log", "a")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "leadflow", "worker",
            "--pool=threads", f"--concurrency={concurrency}",
            "--without-mingle", "--without-gossip", "--loglevel=INFO",
            *(["--beat", f"--schedule={var_dir / 'beat-schedule'}"] if beat else []),
            *queues,
        ],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        # Tasks this worker left queued (a killed worker's, retries) must not
        # reach the next test's worker, which runs on another test database.
        celery_app.control.purge()


def wait_until(predicate, *, timeout: float = 60, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
