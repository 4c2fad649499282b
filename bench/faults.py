"""Benchmark: does every fault recover by itself? (issue 12)

    python scripts/with_services.py -- .venv/bin/python bench/faults.py [--quick]

Runs a real deployment against the throwaway PostgreSQL and Redis of
scripts/with_services.py: gunicorn (2 workers), a Celery worker and beat, on a
throwaway database. Per scenario it sends hosted-form posts and API upserts
(one in four) at a steady rate over 8 connections, injects one fault a quarter
of the way in, and afterwards waits for the accepted posts to be processed:

- worker:   the whole Celery worker is killed (SIGKILL) and started again 10 s later;
- redis:    Redis is killed (its queue is lost: no persistence) and restarted 10 s later;
- postgres: PostgreSQL is stopped (fast shutdown) for 20 s, then started again;
- smtp:     the SMTP server (aiosmtpd in this process) answers "451 try later" for
            30 s while a few nurture emails are being sent.

It prints per scenario and channel a ledger — sent / accepted (2xx) / stored
(a submission row) / processed (the lead exists, the submission marked processed)
/ duplicated (a post stored or recorded as a touchpoint more than once) / lost
(accepted, never processed) — the visitor's p50/p99 latency during the fault,
and the recovery time: from the end of the fault until every accepted post is
processed. Goals: 0 lost, 0 duplicated, p99 <= 1 s while Redis is down,
recovery within 60 s. Exit status 1 when a goal is missed. For smtp the ledger
is of emails (queued / accepted by the server / marked sent / duplicated /
lost) and recovery is until every one was accepted exactly once.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.capture import database_url_for, free_port, make_tenant, setup_django, wait_ready
from bench.common import server_env as bench_server_env
from bench.common import service_urls

ROOT = Path(__file__).resolve().parent.parent
GOAL_P99_REDIS_DOWN = 1.0  # seconds
GOAL_RECOVERY = 60.0  # seconds
API_EVERY = 4  # one request in four is an API upsert


# --- processes -------------------------------------------------------------------------


def listening_pid(port: int) -> int:
    """The process listening on 127.0.0.1:<port> (from /proc: no extra tools)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for row in fh.readlines()[1:]:
                cols = row.split()
                if int(cols[1].split(":")[1], 16) == port and cols[3] == "0A":
                    inodes.add(cols[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    raise SystemExit(f"bench: nothing listens on port {port}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


class Redis:
    """The Redis of with_services: killed, then started again with the same command."""

    def __init__(self, url: str):
        self.port = urlsplit(url).port
        self.restarted: subprocess.Popen | None = None

    def kill(self) -> None:
        pid = listening_pid(self.port)
        # Redis rewrites its command line; start it again as with_services does
        # (no persistence: what was queued is gone).
        with open(f"/proc/{pid}/cmdline", "rb") as fh:  # exe resolves to redis-check-rdb
            server = fh.read().split(b"\0")[0].split()[0].decode()
        self.argv = [
            server, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", os.readlink(f"/proc/{pid}/cwd"),
        ]  # fmt: skip
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)

    def start(self) -> None:
        self.restarted = subprocess.Popen(
            self.argv,
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(self.port)

    def close(self) -> None:
        """The restarted server is ours to stop (with_services stops its own)."""
        if self.restarted is not None and self.restarted.poll() is None:
            self.restarted.terminate()
            self.restarted.wait(timeout=20)


class Postgres:
    """The PostgreSQL of with_services: fast shutdown, then pg_ctl start as its owner."""

    def __init__(self, url: str):
        self.port = urlsplit(url).port

    def stop(self) -> None:
        pid = listening_pid(self.port)
        self.bindir = os.path.dirname(os.readlink(f"/proc/{pid}/exe"))
        self.datadir = os.readlink(f"/proc/{pid}/cwd")  # the postmaster runs in it
        os.kill(pid, signal.SIGINT)  # fast shutdown: what `pg_ctl stop -m fast` sends
        wait_gone(pid, 60)

    def start(self) -> None:
        argv = [
            os.path.join(self.bindir, "pg_ctl"), "start", "-D", self.datadir, "-w",
            "-l", os.path.join(os.path.dirname(self.datadir), "postgres.log"),
            "-o", f"-p {self.port}",
        ]  # fmt: skip
        owner = pwd.getpwuid(os.stat(self.datadir).st_uid).pw_name
        if os.geteuid() == 0 and owner != "root":
            argv = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", owner, "--", *argv]
        subprocess.run(
            argv, check=True, capture_output=True, start_new_session=True, timeout=90, cwd="/"
        )


class Mail:
    """An SMTP server (aiosmtpd on loopback) that accepts mail, or answers
    "451 try later" while deferring, and counts acceptances per Message-ID."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.deferring = False
        self.deferred = 0
        self.accepted: dict[str, int] = {}
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes, policy

        message = message_from_bytes(envelope.original_content, policy=policy.default)
        with self.lock:
            if self.deferring:
                self.deferred += 1
                return "451 4.3.0 Try again later"
            message_id = str(message["Message-ID"])
            self.accepted[message_id] = self.accepted.get(message_id, 0) + 1
        return "250 Message accepted for delivery"

    def close(self) -> None:
        self.controller.stop()


def wait_port(port: int, seconds: float = 30) -> None:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"bench: port {port} did not open within {seconds:.0f}s")


class Deployment:
    """gunicorn (2 workers), a Celery worker and beat, like docker-compose.yml's,
    including its `restart: unless-stopped`: a process that exits by itself is
    started again (and counted), one the bench kills is not."""

    def __init__(self, env: dict[str, str], var_dir: str, web_port: int):
        self.env, self.var_dir, self.web_port = env, var_dir, web_port
        self.procs: dict[str, subprocess.Popen] = {}
        self.argvs: dict[str, list[str]] = {}
        self.restarts: list[str] = []  # "worker (exit 1)"
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        threading.Thread(target=self._supervise, daemon=True).start()

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(os.path.join(self.var_dir, f"{name}.log"), "ab")  # noqa: SIM115
        with self.lock:
            self.argvs[name] = argv
            self.procs[name] = subprocess.Popen(
                argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        log.close()

    def _supervise(self) -> None:
        while not self.stopping.wait(1.0):
            with self.lock:
                exited = [(n, p.returncode) for n, p in self.procs.items() if p.poll() is not None]
                for name, _code in exited:
                    del self.procs[name]
            for name, code in exited:
                self.restarts.append(f"{name} (exit {code})")
                self._spawn(name, self.argvs[name])

    def start_web(self) -> None:
        self._spawn("web", [
            sys.executable, "-m", "gunicorn", "leadflow.wsgi:application",
            f"--bind=127.0.0.1:{self.web_port}", "--workers=2", "--worker-class=gthread",
            "--threads=4", "--keep-alive=30", "--timeout=60", "--log-level=warning",
        ])  # fmt: skip

    def start_worker(self) -> None:
        self._spawn("worker", [
            sys.executable, "-m", "celery", "-A", "leadflow", "worker", "--concurrency=2",
            "--without-mingle", "--without-gossip", "--loglevel=WARNING",
        ])  # fmt: skip

    def start_beat(self) -> None:
        schedule = os.path.join(self.var_dir, "beat-schedule")
        self._spawn("beat", [
            sys.executable, "-m", "celery", "-A", "leadflow", "beat",
            f"--schedule={schedule}", "--loglevel=WARNING",
        ])  # fmt: skip

    def kill(self, name: str) -> None:
        """SIGKILL the whole process group: the main process and its children."""
        with self.lock:
            proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            procs, self.procs = self.procs, {}
        for proc in procs.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                proc.wait()

    def take_restarts(self) -> list[str]:
        taken, self.restarts = self.restarts, []
        return taken


# --- load ------------------------------------------------------------------------------


@dataclass
class Request:
    n: int
    channel: str  # "form" or "api"
    email: str
    started: float = 0.0
    latency: float = 0.0
    ok: bool = False


@dataclass
class Scenario:
    name: str
    requests: list[Request] = field(default_factory=list)
    fault_start: float = 0.0
    fault_end: float = 0.0
    recovered_after: float | None = None
    ledger: dict[str, dict[str, int]] = field(default_factory=dict)
    restarts: list[str] = field(default_factory=list)  # processes that died by themselves

    def during_fault(self) -> list[float]:
        return [
            r.latency
            for r in self.requests
            if self.fault_start <= r.started <= self.fault_end and r.channel == "form"
        ]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def send_load(
    requests: list[Request],
    *,
    port: int,
    rate: float,
    concurrency: int,
    form_path: str,
    form_fields: dict[str, str],
    api_key: str,
) -> None:
    """Send every request at its slot (n / rate), over `concurrency` connections."""
    lock = threading.Lock()
    queue = iter(requests)
    t0 = time.monotonic()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                request = next(queue, None)
            if request is None:
                break
            delay = t0 + request.n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if request.channel == "form":
                path, expect = form_path, (200,)
                body = urlencode({**form_fields, "email": request.email})
                headers = {"Content-Type": "application/x-www-form-urlencoded"}
            else:
                path, expect = "/api/v1/leads", (200, 201)
                body = json.dumps({"email": request.email, "first_name": "Ada"})
                headers = {"Content-Type": "application/json", "X-API-Key": api_key}
            request.started = time.monotonic()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                content = response.read()
                request.ok = response.status in expect and (
                    request.channel == "api" or b"Thank you" in content
                )
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            request.latency = time.monotonic() - request.started
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# --- the ledger --------------------------------------------------------------------------


def ledger(org, requests: list[Request]) -> dict[str, dict[str, int]]:
    """Per channel: sent / accepted / stored / processed / duplicated / lost."""
    from django.db import close_old_connections, connection
    from django.db.models import Count

    from leadflow.core.tenancy import tenant_scope
    from leads.models import Activity, FormSubmission, Lead

    close_old_connections()
    connection.close()  # the database may have restarted under us
    result = {}
    with tenant_scope(org):
        for channel in ("form", "api"):
            mine = [r for r in requests if r.channel == channel]
            emails = [r.email for r in mine]
            accepted = {r.email for r in mine if r.ok}
            submissions = FormSubmission.objects.filter(payload__email__in=emails)
            stored = dict(
                submissions.values_list("payload__email").annotate(n=Count("pk")).order_by()
            )
            processed_subs = set(
                submissions.filter(processed_at__isnull=False).values_list(
                    "payload__email", flat=True
                )
            )
            leads = dict(Lead.objects.filter(email__in=emails).values_list("email", "pk"))
            touches = dict(
                Activity.objects.filter(lead_id__in=leads.values())
                .values_list("lead_id")
                .annotate(n=Count("pk"))
                .order_by()
            )
            processed = {e for e in leads if e in processed_subs}
            duplicated = sum(n - 1 for n in stored.values() if n > 1) + sum(
                n - 1 for n in touches.values() if n > 1
            )
            result[channel] = {
                "sent": len(mine),
                "accepted": len(accepted),
                "stored": len(stored),
                "processed": len(processed),
                "duplicated": duplicated,
                "lost": len(accepted - processed),
            }
    return result


def wait_recovered(org, scenario: Scenario, seconds: float) -> None:
    """Poll until every accepted post is processed; note how long after the fault."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            scenario.ledger = ledger(org, scenario.requests)
        except Exception:  # the database is still coming back
            scenario.ledger = {}
        if scenario.ledger and not any(c["lost"] for c in scenario.ledger.values()):
            scenario.recovered_after = max(0.0, time.monotonic() - scenario.fault_end)
            return
        if time.monotonic() > deadline:
            return
        time.sleep(1)


# --- scenarios ---------------------------------------------------------------------------


def run_scenario(name, deployment, faults, org, *, args, port, form_path, form_fields, api_key):
    run_id = secrets.token_hex(3)
    scenario = Scenario(name)
    channels = ["form"] * (API_EVERY - 1) + ["api"]
    scenario.requests = [
        Request(n, channels[n % API_EVERY], f"{name}{n}.{run_id}@initech.com")
        for n in range(args.posts)
    ]
    load_seconds = args.posts / args.rate
    loader = threading.Thread(
        target=send_load,
        args=(scenario.requests,),
        kwargs={
            "port": port,
            "rate": args.rate,
            "concurrency": args.concurrency,
            "form_path": form_path,
            "form_fields": form_fields,
            "api_key": api_key,
        },
    )
    loader.start()
    time.sleep(load_seconds / 4)
    scenario.fault_start = time.monotonic()
    if name == "worker":
        deployment.kill("worker")
        time.sleep(args.down)
        deployment.start_worker()
    elif name == "redis":
        faults["redis"].kill()
        time.sleep(args.down)
        faults["redis"].start()
    elif name == "postgres":
        faults["postgres"].stop()
        time.sleep(args.pg_down)
        faults["postgres"].start()
    scenario.fault_end = time.monotonic()
    loader.join()
    wait_recovered(org, scenario, args.recovery_window)
    scenario.restarts = deployment.take_restarts()
    return scenario


def mail_ledger(org, lead_ids: list[int], mail: Mail) -> dict[str, int]:
    """queued (email rows) / accepted (by the server) / sent (marked) /
    duplicated (extra acceptances) / lost (neither accepted nor failed for good)."""
    from django.db import close_old_connections

    from leadflow.core.tenancy import tenant_scope
    from nurture.models import EmailMessage, MessageStatus

    close_old_connections()
    with tenant_scope(org):
        messages = list(EmailMessage.objects.filter(lead_id__in=lead_ids))
    with mail.lock:
        accepted = dict(mail.accepted)
    final = (MessageStatus.FAILED, MessageStatus.BOUNCED)
    return {
        "queued": len(messages),
        "accepted": sum(1 for m in messages if accepted.get(m.message_id)),
        "sent": sum(1 for m in messages if m.status == MessageStatus.SENT),
        "duplicated": sum(max(0, accepted.get(m.message_id, 0) - 1) for m in messages),
        "lost": sum(
            1 for m in messages if not accepted.get(m.message_id) and m.status not in final
        ),
    }


def run_smtp_scenario(org, mail: Mail, *, args) -> Scenario:
    """Enroll a few leads in a one-step sequence while the server defers
    everything, dispatch (as beat does each minute), and end the outage after
    --smtp-down seconds; then wait until each email was accepted exactly once."""
    from leadflow.celery import app as celery_app
    from leadflow.core.tenancy import tenant_scope
    from leads.models import Lead
    from nurture.models import EmailTemplate, Sequence, SequenceStep
    from nurture.services import enrollment_start

    scenario = Scenario("smtp")
    run_id = secrets.token_hex(3)
    with tenant_scope(org):
        sequence = Sequence.objects.create(organization=org, name=f"Bench {run_id}", is_active=True)
        template = EmailTemplate.objects.create(
            organization=org,
            name=f"Bench {run_id}",
            subject="Hello {{ first_name }}",
            body_html="<p>Hi {{ first_name }}.</p>",
            body_text="Hi {{ first_name }}.",
        )
        SequenceStep.objects.create(
            organization=org, sequence=sequence, position=1, template=template
        )
        leads = Lead.objects.bulk_create(
            Lead(
                organization=org,
                email=f"nurture{i}.{run_id}@initech.com",
                first_name=f"N{i}",
                email_opt_in=True,
            )
            for i in range(args.emails)
        )
        lead_ids = [lead.pk for lead in leads]
        mail.deferring = True
        scenario.fault_start = time.monotonic()
        enrollment_start(sequence=sequence, lead_ids=lead_ids)
    celery_app.send_task("nurture.dispatch_all")
    time.sleep(args.smtp_down)
    mail.deferring = False
    scenario.fault_end = time.monotonic()
    deadline = scenario.fault_end + args.recovery_window
    while True:
        scenario.ledger = {"email": mail_ledger(org, lead_ids, mail)}
        row = scenario.ledger["email"]
        if row["queued"] == args.emails and row["accepted"] == row["sent"] == args.emails:
            scenario.recovered_after = time.monotonic() - scenario.fault_end
            break
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    time.sleep(2)  # a late duplicate still shows
    scenario.ledger = {"email": mail_ledger(org, lead_ids, mail)}
    scenario.deferred = mail.deferred
    return scenario


def fmt_ms(value: float | None) -> str:
    return "   n/a" if value is None else f"{value * 1000:6.0f}"


def report(scenario: Scenario, window: float) -> bool:
    during = scenario.during_fault()
    p50, p99 = percentile(during, 0.5), percentile(during, 0.99)
    recovered = (
        f"{scenario.recovered_after:.0f} s"
        if scenario.recovered_after is not None
        else f"not within {window:.0f} s"
    )
    if scenario.name == "smtp":
        latency = f"{getattr(scenario, 'deferred', 0)} deliveries answered 451"
    else:
        latency = (
            f"form p50/p99 during the fault {fmt_ms(p50).strip()}/{fmt_ms(p99).strip()} ms "
            f"({len(during)} posts)"
        )
    print(
        f"\n[{scenario.name}] fault {scenario.fault_end - scenario.fault_start:.0f} s; "
        f"{latency}; recovered {recovered} after the fault"
    )
    if scenario.restarts:
        print(f"  exited by themselves and were restarted: {', '.join(scenario.restarts)}")
    print(f"  {'channel':<8}" + "".join(f"{k:>11}" for k in next(iter(scenario.ledger.values()))))
    met = True
    for channel, row in scenario.ledger.items():
        print(f"  {channel:<8}" + "".join(f"{v:>11}" for v in row.values()))
        met &= row["lost"] == 0 and row["duplicated"] == 0
    in_time = scenario.recovered_after is not None and scenario.recovered_after <= GOAL_RECOVERY
    checks = [("0 lost, 0 duplicated", met), (f"recovery <= {GOAL_RECOVERY:.0f} s", in_time)]
    if scenario.name == "redis":
        fast = p99 is not None and p99 <= GOAL_P99_REDIS_DOWN
        checks.append((f"p99 <= {GOAL_P99_REDIS_DOWN:.0f} s while Redis is down", fast))
    print("  goals: " + "; ".join(f"{what}: {'met' if ok else 'MISSED'}" for what, ok in checks))
    return all(ok for _what, ok in checks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 posts per scenario")
    parser.add_argument("--posts", type=int, default=2000, help="per scenario")
    parser.add_argument("--rate", type=float, default=40.0, help="posts per second")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--down", type=float, default=10.0, help="worker/Redis down, seconds")
    parser.add_argument("--pg-down", type=float, default=20.0, help="PostgreSQL down, seconds")
    parser.add_argument("--smtp-down", type=float, default=30.0, help="SMTP 451, seconds")
    parser.add_argument("--emails", type=int, default=5, help="nurture emails for smtp")
    parser.add_argument("--recovery-window", type=float, default=240.0, help="seconds")
    parser.add_argument(
        "--scenarios", default="worker,redis,postgres,smtp", help="comma-separated subset"
    )
    args = parser.parse_args()
    if args.quick:
        args.posts, args.rate = 200, 5.0

    urls = service_urls("faults.py")
    if urls is None:
        return 2
    database_url, redis_url = urls
    server_env = bench_server_env(
        DJANGO_SETTINGS_MODULE="bench.deployment_settings",  # the product's queues
        LEADFLOW_API_RATE_LIMIT="100000/m",
        CONN_MAX_AGE="0",
    )
    setup_django(server_env)
    from django.db import connection

    from accounts.apikeys import apikey_create
    from leads.services.capture_forms import TOKEN_KEY

    old_name = connection.settings_dict["NAME"]
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    var_dir = tempfile.mkdtemp(prefix="leadflow-faults-")
    redis, postgres = Redis(redis_url), Postgres(database_url)
    port = free_port()
    env = {
        **os.environ,
        **server_env,
        "DATABASE_URL": database_url_for(database_url, test_name),
        "LEADFLOW_VAR_DIR": var_dir,
        "PYTHONPATH": str(ROOT),
    }
    mail = Mail()  # accepts, except during the smtp scenario
    env["EMAIL_URL"] = f"smtp://127.0.0.1:{mail.port}"
    deployment = Deployment(env, var_dir, port)
    # Stopped from outside (Ctrl-C, with_services' SIGTERM): still clean up below.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    missed = 0
    try:
        org, form = make_tenant()
        _key, api_key = apikey_create(organization=org, name="bench", created_by=None)
        deployment.start_web()
        deployment.start_worker()
        deployment.start_beat()
        form_path = f"/f/{form.key}/"
        page = wait_ready(port, form_path).decode()
        token = re.search(rf'name="{TOKEN_KEY}" value="([^"]+)"', page).group(1)
        time.sleep(form.min_fill_seconds + 0.2)
        form_fields = {"first_name": "Grace", "consent": "on", "website": "", TOKEN_KEY: token}
        print(
            f"gunicorn 2 workers x 4 threads, a Celery worker (prefork, 2) and beat; "
            f"{args.posts} posts per scenario at {args.rate:.0f}/s over {args.concurrency} "
            f"connections, one in {API_EVERY} an API upsert"
        )
        for name in args.scenarios.split(","):
            if name == "smtp":
                missed += not report(run_smtp_scenario(org, mail, args=args), args.recovery_window)
                continue
            scenario = run_scenario(
                name,
                deployment,
                {"redis": redis, "postgres": postgres},
                org,
                args=args,
                port=port,
                form_path=form_path,
                form_fields=form_fields,
                api_key=api_key,
            )
            missed += not report(scenario, args.recovery_window)
            sys.stdout.flush()
        return 1 if missed else 0
    finally:
        for cleanup in (deployment.stop, redis.close, mail.close, connection.close):
            cleanup()
        shutil.rmtree(var_dir, ignore_errors=True)
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    sys.exit(main())
