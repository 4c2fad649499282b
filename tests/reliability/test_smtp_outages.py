"""SMTP outages with real parts: a Celery worker on Redis and PostgreSQL sends
nurture emails to a scripted local SMTP server. Each test ends with an exact
ledger: rows queued / accepted by the server / marked sent / duplicated / lost.

Backoffs are seconds here (FAST_RETRIES), hours in production."""

from __future__ import annotations

import os
import signal
import time

import pytest

from leadflow.celery import app as celery_app
from leadflow.core.tenancy import tenant_scope
from nurture import services
from nurture.models import Enrollment, EnrollmentStatus, MessageStatus
from tests.reliability.smtp import OK, beat_until, ledger, make_leads, rows
from tests.workers import celery_worker, require_real_services, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_tenants(org, other_org, make_sequence):
    """org: 12 leads enrolled in a one-step sequence; other_org: 3."""
    require_real_services()
    celery_app.conf.task_always_eager = False
    for tenant, n, prefix in ((org, 12, "a"), (other_org, 3, "b")):
        sequence = make_sequence(tenant)
        with tenant_scope(tenant):
            services.enrollment_start(sequence=sequence, lead_ids=make_leads(tenant, n, prefix))
    return org, other_org


def enrollments(org) -> list[Enrollment]:
    with tenant_scope(org):
        return list(Enrollment.objects.all())


def all_settled(orgs) -> bool:
    return (
        all(
            m.status not in (MessageStatus.QUEUED, MessageStatus.SENDING)
            for org in orgs
            for m in rows(org)
        )
        and sum(len(rows(org)) for org in orgs) > 0
    )


def test_connection_refused_then_available_delivers_each_once_with_attempts_counted(
    tmp_path, server, two_tenants
):
    orgs = two_tenants
    with celery_worker(tmp_path, extra_env=server.env):  # nothing listens on the port yet

        def retried_twice():
            messages = [m for org in orgs for m in rows(org)]
            return len(messages) == 15 and all(m.attempts >= 2 for m in messages)

        beat_until(retried_twice, timeout=40, what="two counted attempts per message")
        for message in (m for org in orgs for m in rows(org)):
            assert message.status in (MessageStatus.QUEUED, MessageStatus.SENDING)
            assert "Connection" in message.error or "refused" in message.error.lower()
            assert message.next_attempt_at is not None
        for org in orgs:
            assert {(e.status, e.awaiting_send) for e in enrollments(org)} == {
                (EnrollmentStatus.ACTIVE, True)
            }
        server.start()
        beat_until(lambda: all_settled(orgs), timeout=40, what="every message to be sent")
    assert ledger(orgs, server) == {
        "queued": 15, "accepted": 15, "sent": 15, "duplicated": 0, "lost": 0,
    }  # fmt: skip
    for org in orgs:
        assert all(m.attempts >= 3 and m.error == "" for m in rows(org))
        assert {e.status for e in enrollments(org)} == {EnrollmentStatus.COMPLETED}


def test_451_longer_than_five_attempts_then_all_delivered_none_failed(
    tmp_path, server, two_tenants
):
    orgs = two_tenants
    deferrals = 6  # the old sender gave up after 5 attempts
    server.answer_data = lambda message_id, n: "451 4.3.0 Try again later" if n <= deferrals else OK
    server.start()
    with celery_worker(tmp_path, extra_env=server.env):

        def deferred_beyond_old_limit():
            messages = [m for org in orgs for m in rows(org)]
            return len(messages) == 15 and all(m.attempts >= 5 for m in messages)

        beat_until(deferred_beyond_old_limit, timeout=45, what="five attempts per message")
        for org in orgs:
            assert not [m for m in rows(org) if m.status == MessageStatus.FAILED]
            # Not completed early: each waits on its (only) step.
            unsent = {m.enrollment_id for m in rows(org) if m.status != MessageStatus.SENT}
            for enrollment in enrollments(org):
                if enrollment.pk in unsent:
                    assert (enrollment.status, enrollment.awaiting_send) == ("active", True)
        beat_until(lambda: all_settled(orgs), timeout=45, what="every message to be sent")
    assert ledger(orgs, server) == {
        "queued": 15, "accepted": 15, "sent": 15, "duplicated": 0, "lost": 0,
    }  # fmt: skip
    for org in orgs:
        assert {m.attempts for m in rows(org)} == {deferrals + 1}
        assert {e.status for e in enrollments(org)} == {EnrollmentStatus.COMPLETED}


def test_550_bounces_and_554_fails_with_their_reasons(tmp_path, server, two_tenants):
    orgs = two_tenants
    server.answer_rcpt = lambda address: (
        "550 5.1.1 No such user" if address.startswith("a1") else "250 OK"
    )  # a1@, a10@, a11@: three hard bounces in org
    rejected = {}

    def answer_data(message_id, n):
        if not rejected:
            rejected[message_id] = True  # the first message to reach DATA: content refused
        return "554 5.7.1 Message rejected as spam" if message_id in rejected else OK

    server.answer_data = answer_data
    server.start()
    with celery_worker(tmp_path, extra_env=server.env):
        beat_until(lambda: all_settled(orgs), timeout=30, what="every message to settle")
    messages = [m for tenant in orgs for m in rows(tenant)]
    bounced = [m for m in messages if m.status == MessageStatus.BOUNCED]
    failed = [m for m in messages if m.status == MessageStatus.FAILED]
    assert {m.to_email.split("@")[0] for m in bounced} == {"a1", "a10", "a11"}
    assert all("550" in m.error and "No such user" in m.error for m in bounced)
    assert [m.message_id for m in failed] == list(rejected)
    assert "554" in failed[0].error and "spam" in failed[0].error
    assert {m.attempts for m in bounced + failed} == {1}
    assert ledger(orgs, server) == {
        "queued": 15, "accepted": 11, "sent": 11, "duplicated": 0, "lost": 0,
    }  # fmt: skip
    reasons = {m.enrollment_id: m.status for m in messages}
    for tenant in orgs:
        for enrollment in enrollments(tenant):
            expected = {
                MessageStatus.BOUNCED: (EnrollmentStatus.EXITED, "bounced"),
                MessageStatus.FAILED: (EnrollmentStatus.EXITED, "send_failed"),
                MessageStatus.SENT: (EnrollmentStatus.COMPLETED, "completed"),
            }[reasons[enrollment.pk]]
            assert (enrollment.status, enrollment.exit_reason) == expected


def test_crash_after_the_final_dot_is_not_sent_twice(tmp_path, server, two_tenants):
    """The worker is SIGKILLed after the server received a message's final dot
    and before the worker could record the answer: that message is marked
    unconfirmed (handed over, never resent); every other one goes out once."""
    orgs = two_tenants
    killed = []

    def kill_at_fifth(message_id):
        if len(server.data_seen) == 5 and not killed:
            killed.append(message_id)
            os.kill(victim[0], signal.SIGKILL)

    server.on_data = kill_at_fifth
    victim = []
    server.start()
    first = tmp_path / "first"
    first.mkdir()
    with celery_worker(first, extra_env=server.env, concurrency=1) as worker:
        victim.append(worker.pid)
        celery_app.send_task("nurture.dispatch_all")
        wait_until(lambda: worker.poll() is not None, timeout=60, what="the worker to be killed")
    assert worker.returncode == -signal.SIGKILL and len(killed) == 1
    # The restarted worker's dispatcher pass settles what the dead one held.
    with celery_worker(tmp_path, extra_env={**server.env, "NURTURE_REQUEUE_AFTER_SECONDS": "1"}):
        time.sleep(1.5)  # the dead worker's claim is now older than the requeue delay
        celery_app.send_task("nurture.dispatch_all")
        wait_until(lambda: all_settled(orgs), timeout=60, what="every message to settle")
    messages = {m.message_id: m for tenant in orgs for m in rows(tenant)}
    unconfirmed = [m for m in messages.values() if m.status == MessageStatus.UNCONFIRMED]
    assert [m.message_id for m in unconfirmed] == killed
    assert unconfirmed[0].handed_at is not None and "not sent again" in unconfirmed[0].error
    assert ledger(orgs, server) == {
        "queued": 15, "accepted": 15, "sent": 14, "duplicated": 0, "lost": 0,
    }  # fmt: skip
    assert server.data_seen[killed[0]] == 1  # not even offered again
    # The enrollment moved on: the server has the message.
    for tenant in orgs:
        assert {e.status for e in enrollments(tenant)} == {EnrollmentStatus.COMPLETED}
