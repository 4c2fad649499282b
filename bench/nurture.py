"""Benchmark: nurture emails dispatched and sent by a real Celery worker, against a
floor of a plain smtplib loop sending the same messages.

    python scripts/with_services.py -- .venv/bin/python bench/nurture.py

Needs PostgreSQL and Redis (DATABASE_URL / REDIS_URL, as scripts/with_services.py
sets them). It creates a throwaway database with one organization, a one-step
sequence and N consenting leads enrolled and due, and starts a local SMTP sink
(aiosmtpd, its own process, loopback). Then:

- nurture: a worker (prefork) runs the organization's dispatcher — it writes one
  EmailMessage per enrollment (the exactly-once key), enqueues batched sends,
  and the send tasks lock, send and mark each row — timed from the dispatch
  call until every message is marked sent;
- floor: the same messages (built beforehand) sent by one smtplib connection in
  a loop, nothing else.

Goal (issue 6): nurture throughput >= 50% of the floor's.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"bench: nothing listens on 127.0.0.1:{port}")


def database_url_for(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def make_tenant(n: int):
    from django.utils import timezone

    from accounts.models import Organization
    from leadflow.core.tenancy import tenant_scope
    from leads.models import Lead
    from nurture import services
    from nurture.models import NurtureSettings
    from nurture.services.sender import dkim_key_ensure

    org = Organization.objects.create(name="Bench Inc", slug=f"bench-{secrets.token_hex(3)}")
    with tenant_scope(org):
        # A ready sender (verified address, postal address) with a production-size
        # DKIM key: every send is signed, as in production.
        NurtureSettings.objects.create(
            organization=org,
            throttle_per_minute=10 * n,
            from_name="Bench",
            from_email="news@bench.example",
            from_email_verified_at=timezone.now(),
            physical_address="Bench Inc, 1 Main St",
        )
        dkim_key_ensure(organization_id=org.pk)
        template = services.template_save(
            data={
                "name": "Bench",
                "subject": "{{ first_name }}, your analytics guide",
                "body_html": "<p>Hi {{ first_name }} of {{ company }},</p>"
                "<p>Here is the guide we promised: "
                '<a href="https://example.com/guide">read it</a>, or '
                '<a href="https://example.com/demo">book a demo</a>.</p>',
            },
            organization_id=org.pk,
        )
        sequence = services.sequence_save(
            data={"name": "Bench", "is_active": True, "exit_on": ["mql"]}, organization_id=org.pk
        )
        services.step_save(sequence=sequence, template=template)
        Lead.objects.bulk_create(
            (
                Lead(
                    organization=org,
                    email=f"person{i}@prospect.example",
                    first_name=f"Person{i}",
                    company_name="Initech",
                    email_opt_in=True,
                )
                for i in range(n)
            ),
            batch_size=2000,
        )
        ids = list(Lead.objects.values_list("pk", flat=True))
        services.enrollment_start(sequence=sequence, lead_ids=ids)
    return org


def sent_count(org) -> int:
    from leadflow.core.tenancy import tenant_scope
    from nurture.models import EmailMessage

    with tenant_scope(org):
        return EmailMessage.objects.filter(status="sent").count()


def run_nurture(org, n: int, timeout: float) -> float:
    from leadflow.celery import app

    started = time.perf_counter()
    app.send_task("nurture.dispatch_organization", kwargs={"organization_id": org.pk})
    deadline = time.monotonic() + timeout
    while sent_count(org) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: only {sent_count(org)} of {n} sent within {timeout:.0f}s")
        time.sleep(0.25)  # each poll is a COUNT over the table: keep it off the hot path
    return time.perf_counter() - started


def run_floor(org, port: int) -> tuple[float, int]:
    """The same messages (as stored, as the worker built them) over one connection."""
    from leadflow.core.tenancy import tenant_scope
    from nurture.channels.email import build_email
    from nurture.models import EmailMessage

    with tenant_scope(org):
        prepared = []
        for message in EmailMessage.objects.order_by("pk").iterator(chunk_size=2000):
            email = build_email(message)
            prepared.append(
                (email.from_email, email.recipients(), email.message().as_bytes(linesep="\r\n"))
            )
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for sender, recipients, data in prepared:
            smtp.sendmail(sender, recipients, data)
    return time.perf_counter() - started, len(prepared)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4, help="worker processes")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not redis_url:
        print(
            "bench: needs PostgreSQL and Redis; run it through\n"
            "  python scripts/with_services.py -- .venv/bin/python bench/nurture.py",
            file=sys.stderr,
        )
        return 2
    # Run as a script, bench/ comes first on sys.path, where a file named like a
    # standard module would shadow it: the repository root goes first instead.
    here = Path(__file__).resolve().parent
    sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != here]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.db import connection

    smtp_port = free_port()
    var_dir = (
        Path(os.environ.get("TMPDIR", "/tmp")) / f"leadflow-bench-nurture-{secrets.token_hex(3)}"
    )
    var_dir.mkdir(parents=True)
    sink = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}",
         "-c", "aiosmtpd.handlers.Sink"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    worker = None
    old_name = connection.settings_dict["NAME"]
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        wait_port(smtp_port)
        setup_started = time.perf_counter()
        org = make_tenant(args.messages)
        setup_seconds = time.perf_counter() - setup_started
        env = {
            **os.environ,
            "DATABASE_URL": database_url_for(database_url, test_name),
            "REDIS_URL": redis_url,
            "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
            "LEADFLOW_VAR_DIR": str(var_dir),
            "CELERY_TASK_ALWAYS_EAGER": "false",
        }
        log = open(var_dir / "worker.log", "w")  # noqa: SIM115 - closed with the worker
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "leadflow", "worker", "--pool=prefork",
             f"--concurrency={args.concurrency}", "--without-mingle", "--without-gossip",
             "--loglevel=WARNING"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        time.sleep(3)  # the worker's processes start; excluded from the timing
        nurture_seconds = run_nurture(org, args.messages, args.timeout)
        nurture_rate = args.messages / nurture_seconds
        print(
            f"{args.messages:,} due enrollments (set-up {setup_seconds:.1f}s), "
            f"worker prefork x{args.concurrency}, SMTP sink aiosmtpd on loopback"
        )
        print(
            f"nurture  {args.messages:>6} msgs  {nurture_seconds:>7.2f} s  "
            f"{nurture_rate:>8.1f} msg/s",
            flush=True,
        )
        floor_seconds, floor_count = run_floor(org, smtp_port)
        floor_rate = floor_count / floor_seconds
        ratio = nurture_rate / floor_rate
        print(f"floor    {floor_count:>6} msgs  {floor_seconds:>7.2f} s  {floor_rate:>8.1f} msg/s")
        print(
            f"nurture/floor {ratio:.2f} goal >= {GOAL:.2f}: {'met' if ratio >= GOAL else 'MISSED'}"
        )
        return 0
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        sink.terminate()
        sink.wait()
        import redis

        client = redis.Redis.from_url(redis_url)
        from django.conf import settings as django_settings

        from leadflow.core.queues import queue_names

        # Anything the bench left in the broker (the old single queue included).
        client.delete("celery", *queue_names(django_settings.CELERY_ORG_SHARDS))
        client.close()
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
