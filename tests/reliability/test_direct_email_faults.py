"""Reps' one-to-one emails with real parts: a Celery worker on Redis and
PostgreSQL sends to a scripted local SMTP server. An outage defers them and
they go out once it ends; a worker SIGKILLed after the final dot leaves its
email unconfirmed, never sent twice. Each test ends with an exact ledger."""

from __future__ import annotations

import os
import signal
import time

import pytest

from accounts.models import Role
from leadflow.celery import app as celery_app
from leadflow.core.tenancy import tenant_scope
from nurture.models import DirectEmail, DirectEmailStatus
from nurture.services.direct import direct_email_send
from tests.factories import LeadFactory
from tests.reliability.smtp import ScriptedSMTP, beat_until
from tests.workers import celery_worker, require_real_services, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def queue_emails(org, rep, n: int) -> None:
    with tenant_scope(org):
        for i in range(n):
            lead = LeadFactory(organization=org, owner=rep, email=f"l{i}@{org.slug}.example")
            direct_email_send(lead=lead, actor=rep, subject=f"Hi {i}", body="Shall we talk?")


@pytest.fixture
def two_tenants(org, other_org, make_member):
    """org: 4 direct emails queued by its rep; other_org: 2 (no worker yet)."""
    require_real_services()
    celery_app.conf.task_always_eager = False
    for tenant, n in ((org, 4), (other_org, 2)):
        queue_emails(tenant, make_member(tenant, Role.SALES_REP), n)
    return org, other_org


def emails(orgs) -> list[DirectEmail]:
    found = []
    for org in orgs:
        with tenant_scope(org):
            found += list(DirectEmail.objects.order_by("pk"))
    return found


def settled(orgs) -> bool:
    open_states = (DirectEmailStatus.QUEUED, DirectEmailStatus.SENDING, DirectEmailStatus.DEFERRED)
    return all(e.status not in open_states for e in emails(orgs))


def ledger(orgs, server: ScriptedSMTP) -> dict[str, int]:
    rows = emails(orgs)
    return {
        "queued": len(rows),
        "accepted": sum(1 for e in rows if server.accepted[e.message_id]),
        "sent": sum(1 for e in rows if e.status == DirectEmailStatus.SENT),
        "duplicated": sum(max(0, server.accepted[e.message_id] - 1) for e in rows),
        "lost": sum(1 for e in rows if not server.accepted[e.message_id]),
    }


def test_smtp_outage_defers_then_each_email_goes_out_once(tmp_path, server, two_tenants):
    orgs = two_tenants
    with celery_worker(tmp_path, extra_env=server.env):  # nothing listens on the port yet
        wait_until(
            lambda: all(e.status == DirectEmailStatus.DEFERRED for e in emails(orgs)),
            timeout=40,
            what="every email deferred",
        )
        assert all("connect" in e.error.lower() and e.next_attempt_at for e in emails(orgs))
        server.start()
        beat_until(lambda: settled(orgs), timeout=40, what="every email to be sent")
    assert ledger(orgs, server) == {
        "queued": 6, "accepted": 6, "sent": 6, "duplicated": 0, "lost": 0,
    }  # fmt: skip
    assert all(e.attempts >= 2 and e.error == "" for e in emails(orgs))


def test_worker_killed_after_the_final_dot_never_sends_twice(tmp_path, server, two_tenants):
    orgs = two_tenants
    killed: list[str] = []
    victim: list[int] = []

    def kill_at_third(message_id):
        if len(server.data_seen) == 3 and not killed:
            killed.append(message_id)
            os.kill(victim[0], signal.SIGKILL)

    server.on_data = kill_at_third
    server.start()
    first = tmp_path / "first"
    first.mkdir()
    with celery_worker(first, extra_env=server.env, concurrency=1) as worker:
        victim.append(worker.pid)
        wait_until(lambda: worker.poll() is not None, timeout=60, what="the worker to be killed")
    assert worker.returncode == -signal.SIGKILL and len(killed) == 1
    # The restarted worker, and the dispatcher's pass, settle what the dead one held.
    with celery_worker(tmp_path, extra_env={**server.env, "NURTURE_REQUEUE_AFTER_SECONDS": "1"}):
        time.sleep(1.5)  # the dead worker's claim is now older than the requeue delay
        beat_until(lambda: settled(orgs), timeout=60, what="every email to settle")
    by_id = {e.message_id: e for e in emails(orgs)}
    assert by_id[killed[0]].status == DirectEmailStatus.UNCONFIRMED
    assert by_id[killed[0]].handed_at is not None
    assert server.data_seen[killed[0]] == 1  # not even offered again
    assert ledger(orgs, server) == {
        "queued": 6, "accepted": 6, "sent": 5, "duplicated": 0, "lost": 0,
    }  # fmt: skip
