"""The core capture → score → route path with Django connected through PgBouncer
in transaction pooling mode (scripts/with_services.py starts one in front of the
test PostgreSQL, round-robin over its server connections): each transaction may
land on another server session, so anything that leaned on session state (a SET
outside a transaction, a session advisory lock, a server-side cursor, a prepared
statement) would break here. And a check of the code for such session state."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from leadflow.celery import app as celery_app
from tests.scale.lifecycle import create_by_api, routed, set_up_path, submit_form
from tests.workers import celery_worker, require_real_services, wait_until

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "leads", "scoring", "pipeline", "nurture", "reports", "leadflow")
PGBOUNCER_URL = os.environ.get("PGBOUNCER_DATABASE_URL", "")


def pgbouncer_admin(command: str) -> list[dict]:
    """A command on PgBouncer's admin console, its rows as dicts."""
    admin = urlsplit(PGBOUNCER_URL)._replace(path="/pgbouncer").geturl()
    with psycopg.connect(admin, autocommit=True, prepare_threshold=None) as conn:
        cursor = conn.execute(command)
        if cursor.description is None:
            return []
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def pgbouncer_stats(database: str) -> dict:
    rows = pgbouncer_admin("SHOW STATS")
    return next((row for row in rows if row["database"] == database), {})


def open_server_sessions(url: str, n: int) -> None:
    """Make PgBouncer open n server sessions (n clients in a transaction at
    once), so its round robin spreads the test's transactions over them."""
    clients = [psycopg.connect(url, prepare_threshold=None) for _ in range(n)]
    try:
        for client in clients:
            client.execute("SELECT 1")  # each holds a server session until rollback
    finally:
        for client in clients:
            client.rollback()  # a session left mid-transaction would be closed
            client.close()


@pytest.fixture
def through_pgbouncer(transactional_db):
    """Point Django's connection at PgBouncer (same database, same role) as a
    deployment with DATABASE_TRANSACTION_POOLING=true would."""
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("needs PostgreSQL")
    if not PGBOUNCER_URL:
        pytest.skip(
            "PgBouncer is not installed (Debian package pgbouncer; "
            "scripts/ensure_system_deps.sh installs it, scripts/with_services.py starts it)"
        )
    url = urlsplit(PGBOUNCER_URL)
    keys = ("HOST", "PORT", "DISABLE_SERVER_SIDE_CURSORS")
    saved = {key: connection.settings_dict.get(key) for key in keys}
    database = connection.settings_dict["NAME"]
    open_server_sessions(url._replace(path=f"/{database}").geturl(), 3)
    connection.close()
    connection.settings_dict.update(
        HOST=url.hostname, PORT=url.port, DISABLE_SERVER_SIDE_CURSORS=True
    )
    try:
        yield database
    finally:
        connection.close()
        connection.settings_dict.update(saved)
        # Close PgBouncer's server sessions, or the test database can't be dropped.
        pgbouncer_admin(f"KILL {database}")
        pgbouncer_admin(f"RESUME {database}")


@pytest.mark.postgres
def test_capture_score_and_route_through_pgbouncer(through_pgbouncer, org, other_org):
    database = through_pgbouncer
    before = pgbouncer_stats(database).get("total_xact_count", 0)
    pools = [row for row in pgbouncer_admin("SHOW POOLS") if row["database"] == database]
    assert pools[0]["pool_mode"] == "transaction"
    assert pools[0]["sv_idle"] + pools[0]["sv_used"] >= 3, pools
    with connection.cursor() as cursor:  # PgBouncer answers, not PostgreSQL directly
        cursor.execute("SELECT inet_server_port()")
        assert cursor.fetchone()[0] != connection.settings_dict["PORT"]
    path = set_up_path(org)
    other = set_up_path(other_org)
    submit_form(path["form"], "ada@initech.com")
    create_by_api(path["key"], "bob@initech.com")
    submit_form(other["form"], "eve@globex.com", title="Intern")
    for email in ("ada@initech.com", "bob@initech.com"):
        lead = routed(org, email)
        assert lead == {
            "score": 60,
            "stage": "mql",
            "rep_id": path["rep_id"],
            "owner": path["rep_id"],
        }, email
    # The other tenant's intern is captured and scored below the threshold, unrouted.
    assert routed(other_org, "eve@globex.com") is None
    assert routed(org, "eve@globex.com") is None and routed(other_org, "ada@initech.com") is None
    after = pgbouncer_stats(database).get("total_xact_count", 0)
    assert after - before >= 10, (before, after)


@pytest.mark.integration
def test_a_worker_connected_through_pgbouncer_processes_submissions(
    through_pgbouncer, tmp_path, org, other_org
):
    """The worker side of the path: a real capture worker whose DATABASE_URL is
    PgBouncer (DATABASE_TRANSACTION_POOLING=true) scores and routes form posts."""
    require_real_services()
    celery_app.conf.task_always_eager = False
    path = set_up_path(org)
    set_up_path(other_org)
    url = urlsplit(PGBOUNCER_URL)._replace(path=f"/{through_pgbouncer}").geturl()
    pooled = {"DATABASE_URL": url, "DATABASE_TRANSACTION_POOLING": "true"}
    with celery_worker(tmp_path, group="capture", extra_env=pooled):
        emails = [f"vp{i}@initech.com" for i in range(3)]
        for email in emails:
            submit_form(path["form"], email)
        wait_until(
            lambda: all(routed(org, email) for email in emails),
            timeout=60,
            what="the worker to score and route the submissions",
        )
    assert {routed(org, email)["rep_id"] for email in emails} == {path["rep_id"]}
    assert all(routed(other_org, email) is None for email in emails)


SESSION_STATE = {
    "a session-level SET (use SET LOCAL inside a transaction)": re.compile(
        r"""execute\(\s*f?["']\s*SET\s+(?!LOCAL\b)""", re.I
    ),
    "set_config(..., false) lasts the session": re.compile(r"set_config\([^)]*false", re.I),
    "a session advisory lock (use pg_advisory_xact_lock)": re.compile(
        r"pg_(?:try_)?advisory_lock(?:_shared)?\(", re.I
    ),
    "a cursor WITH HOLD outlives its transaction": re.compile(r"WITH\s+HOLD", re.I),
    "LISTEN/NOTIFY channels belong to a session": re.compile(r"""["']\s*LISTEN\s""", re.I),
    "a named prepared statement belongs to a session": re.compile(r"""["']\s*PREPARE\s""", re.I),
}


def test_no_code_leans_on_session_state():
    """PgBouncer in transaction mode hands each transaction any server session:
    state set outside a transaction leaks to another client or is lost."""
    found = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                for what, pattern in SESSION_STATE.items():
                    if pattern.search(line):
                        found.append(f"{path.relative_to(ROOT)}:{number}: {what}")
    assert not found, "\n".join(found)


def test_the_session_state_patterns_catch_what_they_name():
    catches = {
        'cursor.execute("SET statement_timeout = 5000")': True,
        'cursor.execute("SET LOCAL statement_timeout = 5000")': False,
        "\"SELECT set_config('lock_timeout', %s, false)\"": True,
        "\"SELECT set_config('lock_timeout', %s, true)\"": False,
        '"SELECT pg_advisory_lock(%s)"': True,
        '"SELECT pg_try_advisory_xact_lock(%s)"': False,
        '" SET a = 1 WHERE id = %s"': False,  # the SET of an UPDATE
    }
    for line, expected in catches.items():
        hit = any(pattern.search(line) for pattern in SESSION_STATE.values())
        assert hit is expected, line
