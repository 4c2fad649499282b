"""Report pages read from the PostgreSQL replica when one is configured
(leadflow/core/dbrouter.py); writes never go there, a transaction reads its own
writes from the primary, and the tenant wall holds on the replica too.

The "replica" here is the test database through a second connection whose
transactions are all read-only (default_transaction_read_only): anything that
tried to write through it would fail."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from leadflow.core.dbrouter import REPLICA, PrimaryReplicaRouter, read_alias, replica_reads
from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from tests.reports.test_funnel import MARCH, build_dataset, build_noise

READS = ("SELECT", "WITH", "BEGIN", "COMMIT", "ROLLBACK")
ON_POSTGRES = "postgresql" in settings.DATABASES["default"]["ENGINE"]


def test_without_a_replica_everything_reads_from_the_primary():
    # The module's replica alias (below) may already be set up: hide it.
    hidden = connections.settings.pop(REPLICA, None)
    try:
        with replica_reads():
            assert read_alias() == DEFAULT_DB_ALIAS
    finally:
        if hidden is not None:
            connections.settings[REPLICA] = hidden


@pytest.fixture(scope="module")
def replica_alias(django_db_setup, django_db_blocker):
    """A `replica` alias on the test database, read-only on PostgreSQL: set up
    before the tests' database fixtures so that they can allow it."""
    config = dict(connections[DEFAULT_DB_ALIAS].settings_dict)
    config["TEST"] = {**config["TEST"], "MIRROR": DEFAULT_DB_ALIAS}
    if ON_POSTGRES:
        options = dict(config.get("OPTIONS") or {})
        options["options"] = "-c default_transaction_read_only=on"
        config["OPTIONS"] = options
    connections.settings[REPLICA] = config
    try:
        yield REPLICA
    finally:
        connections[REPLICA].close()
        del connections[REPLICA]
        del connections.settings[REPLICA]


@pytest.fixture
def replica(replica_alias):
    return connections[replica_alias]


@pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA])
def test_only_marked_reads_outside_a_transaction_go_to_the_replica(replica):
    router = PrimaryReplicaRouter()
    assert router.db_for_read(Lead) == DEFAULT_DB_ALIAS  # not marked
    with replica_reads():
        assert router.db_for_read(Lead) == REPLICA
        assert router.db_for_write(Lead) == DEFAULT_DB_ALIAS
        with transaction.atomic():  # it may have written: read your own writes
            assert router.db_for_read(Lead) == DEFAULT_DB_ALIAS
        assert router.db_for_read(Lead) == REPLICA
    assert router.db_for_read(Lead) == DEFAULT_DB_ALIAS
    assert router.allow_migrate(REPLICA, "leads") is False


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL (a read-only second connection)")
@pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA])
def test_report_pages_read_from_the_replica_and_write_nothing_there(
    org, other_org, replica, marketer, client_for
):
    build_dataset(org)
    build_noise(other_org)
    with replica.cursor() as cursor:  # the flag is on: a write here would fail
        cursor.execute("SHOW default_transaction_read_only")
        assert cursor.fetchone()[0] == "on"
    client = client_for(marketer)
    pages = ["marketing", "sources", "funnel", "sales", "attribution", "scoring"]
    for name in pages:
        url = reverse(f"reports:{name}", kwargs={"org_slug": org.slug})
        with (
            CaptureQueriesContext(replica) as on_replica,
            CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_primary,
        ):
            response = client.get(url, MARCH)
        assert response.status_code == 200, name
        report_reads = [q["sql"] for q in on_replica if '"leads_lead"' in q["sql"]]
        assert report_reads, f"{name} read no leads from the replica"
        # Reads only: a read-only transaction around a statement that sets local
        # planner settings (reports.selectors.distribution) is fine on a replica.
        writes = [q["sql"][:120] for q in on_replica if not q["sql"].lstrip().startswith(READS)]
        assert not writes, (name, writes)
        # The primary served only the session, the user and the tenancy check.
        assert not [q["sql"] for q in on_primary if '"leads_lead"' in q["sql"]], name
    # The tenant wall holds on the replica: the same numbers as the primary's.
    url = reverse("reports:marketing", kwargs={"org_slug": org.slug})
    kpis = {k.label: k.value for k in client.get(url, MARCH).context["kpis"]}
    assert (kpis["New leads"], kpis["MQLs"], kpis["Won"]) == (6, 4, 1)
    with tenant_scope(org):
        assert Lead.objects.using(REPLICA).count() == Lead.objects.count()


def test_the_environment_configures_the_replica_and_transaction_pooling():
    probe = (
        "from django.conf import settings as s\n"
        "r = s.DATABASES['replica']\n"
        "d = s.DATABASES['default']\n"
        "print(r['HOST'], r['NAME'], r['TEST']['MIRROR'], s.DATABASE_ROUTERS[0],"
        " r['DISABLE_SERVER_SIDE_CURSORS'], d['DISABLE_SERVER_SIDE_CURSORS'])\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "leadflow.settings",
        "DATABASE_URL": "postgres://u@primary:5432/leadflow",
        "DATABASE_REPLICA_URL": "postgres://u@standby:5432/leadflow",
        "DATABASE_TRANSACTION_POOLING": "true",
    }
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == [
        "standby",
        "leadflow",
        "default",
        "leadflow.core.dbrouter.PrimaryReplicaRouter",
        "True",
        "True",
    ], out.stderr
