"""A scriptable SMTP server (aiosmtpd on loopback) that keeps a ledger of what
it accepted per Message-ID, and the helpers the reliability tests share."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller

from leadflow.celery import app as celery_app
from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from nurture.models import EmailMessage, MessageStatus

OK = "250 Message accepted for delivery"
# Short backoffs so hours of retrying fit in seconds; a sweep that finds a
# message "sending" for 10 s takes it for a dead worker's.
FAST_RETRIES = {
    "NURTURE_RETRY_BASE_SECONDS": "1",
    "NURTURE_RETRY_MAX_SECONDS": "2",
    "NURTURE_REQUEUE_AFTER_SECONDS": "10",
    "NURTURE_SMTP_TIMEOUT_SECONDS": "5",
}


class ScriptedSMTP:
    """answer_rcpt(address) and answer_data(message_id, n) (n: how many times
    this message reached the end of DATA) give each reply; on_data(message_id)
    runs after the final dot, before the reply."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accepted: Counter[str] = Counter()
        self.data_seen: Counter[str] = Counter()
        self.answer_rcpt: Callable[[str], str] = lambda address: "250 OK"
        self.answer_data: Callable[[str, int], str] = lambda message_id, n: OK
        self.on_data: Callable[[str], None] | None = None
        self.controller: Controller | None = None
        self.port = free_port()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answer = self.answer_rcpt(address)
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, server, session, envelope):
        message_id = message_from_bytes(envelope.original_content, policy=policy.default)[
            "Message-ID"
        ]
        with self.lock:
            self.data_seen[message_id] += 1
            answer = self.answer_data(message_id, self.data_seen[message_id])
            if answer.startswith("250"):
                self.accepted[message_id] += 1
        if self.on_data:
            self.on_data(message_id)
        return answer

    @property
    def env(self) -> dict[str, str]:
        return {"EMAIL_URL": f"smtp://127.0.0.1:{self.port}", **FAST_RETRIES}

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_leads(org, n: int, prefix: str) -> list[int]:
    with tenant_scope(org):
        Lead.objects.bulk_create(
            Lead(
                organization=org,
                email=f"{prefix}{i}@prospect.example",
                first_name=f"P{i}",
                email_opt_in=True,
            )
            for i in range(n)
        )
        return list(Lead.objects.filter(email__startswith=prefix).values_list("pk", flat=True))


def rows(org) -> list[EmailMessage]:
    with tenant_scope(org):
        return list(EmailMessage.objects.select_related("enrollment").order_by("pk"))


def ledger(orgs, server: ScriptedSMTP) -> dict[str, int]:
    """queued: rows written; accepted: rows the server accepted at least once;
    sent: rows marked sent; duplicated: extra acceptances; lost: rows neither
    accepted nor marked failed/bounced (an email that silently went nowhere),
    plus rows marked sent that the server never accepted."""
    messages = [m for org in orgs for m in rows(org)]
    final_failure = (MessageStatus.FAILED, MessageStatus.BOUNCED)
    return {
        "queued": len(messages),
        "accepted": sum(1 for m in messages if server.accepted[m.message_id]),
        "sent": sum(1 for m in messages if m.status == MessageStatus.SENT),
        "duplicated": sum(max(0, server.accepted[m.message_id] - 1) for m in messages),
        "lost": sum(
            1
            for m in messages
            if (not server.accepted[m.message_id] and m.status not in final_failure)
            or (m.status == MessageStatus.SENT and not server.accepted[m.message_id])
        ),
    }


def beat_until(predicate, *, timeout: float, what: str, every: float = 0.5) -> None:
    """Wait, sending the nurture dispatcher's beat task every `every` seconds
    (what celery beat does each minute in production)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        celery_app.send_task("nurture.dispatch_all")
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
