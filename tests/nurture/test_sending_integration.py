"""Real parts: a Celery worker on Redis and PostgreSQL sends nurture emails to a
local SMTP server (aiosmtpd on loopback); a worker killed mid-send loses and
duplicates nothing."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections import Counter
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from leadflow.celery import app as celery_app
from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from nurture import services
from nurture.models import EmailMessage, MessageStatus
from tests.factories import verified_sender
from tests.workers import celery_worker, require_real_services, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class Sink:
    """An SMTP server that keeps every accepted message; optionally SIGKILLs a
    process when the n-th recipient arrives (mid-transaction, before DATA)."""

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()
        self.rcpts = 0
        self.kill_at: int | None = None
        self.victim: int | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.rcpts += 1
            if self.kill_at and self.rcpts == self.kill_at and self.victim:
                os.kill(self.victim, signal.SIGKILL)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        with self.lock:
            self.messages.append(parsed)
        return "250 Message accepted for delivery"

    def count(self) -> int:
        with self.lock:
            return len(self.messages)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def sink():
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, {"EMAIL_URL": f"smtp://127.0.0.1:{controller.port}"}
    controller.stop()


def make_leads(org, n, prefix):
    Lead.objects.bulk_create(
        Lead(
            organization=org,
            email=f"{prefix}{i}@prospect.example",
            first_name=f"Person{i}",
            company_name="Initech",
            email_opt_in=True,
        )
        for i in range(n)
    )
    return list(Lead.objects.filter(email__startswith=prefix).values_list("pk", flat=True))


def dispatch_on_worker(org):
    celery_app.send_task("nurture.dispatch_organization", kwargs={"organization_id": org.pk})


def test_worker_sends_a_three_step_sequence_over_smtp(
    tmp_path, sink, org, other_org, make_sequence
):
    require_real_services()
    celery_app.conf.task_always_eager = False
    handler, env = sink
    sequence = make_sequence(org, delays=[(0, 0), (0, 0), (0, 0)])
    other_sequence = make_sequence(other_org)
    with tenant_scope(org):
        ids = make_leads(org, 3, "ada")
        services.enrollment_start(sequence=sequence, lead_ids=ids)
    with tenant_scope(other_org):
        services.enrollment_start(sequence=other_sequence, lead_ids=make_leads(other_org, 2, "x"))
    with celery_worker(tmp_path, extra_env=env):
        for expected in (3, 6, 9):  # one step per dispatcher pass (delays are 0)
            dispatch_on_worker(org)
            wait_until(lambda e=expected: handler.count() >= e, timeout=60, what="emails")
    assert handler.count() == 9
    with tenant_scope(org):
        stored = {m.message_id: m for m in EmailMessage.objects.select_related("step")}
    assert {m["Message-ID"] for m in handler.messages} == set(stored)
    for received in handler.messages:
        row = stored[received["Message-ID"]]
        assert received["To"] == row.to_email
        assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsubscribe = received["List-Unsubscribe"].strip()  # long headers are folded
        assert unsubscribe.startswith("<http") and "/e/u/" in unsubscribe
        assert received["Subject"] == f"Step {row.step.position} for {row.lead.first_name}"
        html = received.get_body(("html",)).get_content()
        assert f"Hi {row.lead.first_name} of Initech" in html
        assert row.status == MessageStatus.SENT
    with tenant_scope(other_org):
        assert not EmailMessage.objects.exists()  # its dispatcher never ran


def test_sigkill_mid_send_then_restart_delivers_every_message_exactly_once(
    tmp_path, sink, org, other_org, make_sequence
):
    require_real_services()
    celery_app.conf.task_always_eager = False
    handler, env = sink
    total = 1000
    sequence = make_sequence(org)
    verified_sender(org, throttle_per_minute=10 * total)
    with tenant_scope(org):
        services.enrollment_start(sequence=sequence, lead_ids=make_leads(org, total, "p"))
    # One worker thread: the kill lands while that thread is inside an SMTP
    # transaction (at a RCPT), the moment a message is most "in flight".
    handler.kill_at = 300
    first_log = tmp_path / "first"
    first_log.mkdir()
    with celery_worker(first_log, extra_env=env, concurrency=1) as worker:
        handler.victim = worker.pid
        dispatch_on_worker(org)
        wait_until(lambda: worker.poll() is not None, timeout=90, what="the worker to be killed")
    assert worker.returncode == -signal.SIGKILL
    delivered_before = handler.count()
    assert 0 < delivered_before < total
    # The restarted worker's dispatcher re-enqueues what the dead one held.
    with celery_worker(tmp_path, extra_env={**env, "NURTURE_REQUEUE_AFTER_SECONDS": "0"}):
        dispatch_on_worker(org)

        def all_sent():
            with tenant_scope(org):
                return EmailMessage.objects.filter(status=MessageStatus.SENT).count() == total

        wait_until(all_sent, timeout=120, what="every message to be sent")
    per_id = Counter(m["Message-ID"] for m in handler.messages)
    with tenant_scope(org):
        stored = set(EmailMessage.objects.values_list("message_id", flat=True))
    assert len(stored) == total
    assert set(per_id) == stored
    assert max(per_id.values()) == 1, [k for k, v in per_id.items() if v > 1]
