"""Benchmark: the public capture endpoint against a floor of one INSERT.

    python scripts/with_services.py -- .venv/bin/python bench/capture.py

Needs PostgreSQL and Redis (DATABASE_URL / REDIS_URL, as scripts/with_services.py
sets them). It creates a throwaway database, an organization and an active form,
starts gunicorn on a free loopback port serving the real app plus a bare floor
view (bench/urls.py: one INSERT of the posted fields), and drives both with the
same keep-alive load on loopback: a fixed number of requests, bounded in time.

The capture requests are realistic: the form is fetched once for its fill-time
token, and the posts come after the form's minimum fill time, with the honeypot
empty; every post is accepted and enqueued (to Redis; no worker needed). Only the
per-IP rate limit is off (bench/settings.py), since all load comes from one IP.

Goal (issue 3): capture throughput >= 50% of the floor's; p99 <= 3x the floor's.

The same run measures the single-lead API create (POST /api/v1/leads with an API
key, a lead that the organization's starter rules score, with an activity)
against its own floor (bench/urls.py: the key authenticated as the API does, then
one INSERT of the lead row). Goal (issue 15): the API create within 2x its
floor — throughput >= 50% of the floor's, p50 <= 2x the floor's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import server_env as bench_server_env
from bench.common import service_urls

ROOT = Path(__file__).resolve().parent.parent
GOAL_THROUGHPUT = 0.5
GOAL_P99 = 3.0
GOAL_API = 2.0  # the API create within 2x its floor


@dataclass
class Run:
    name: str
    latencies: list[float]
    seconds: float
    errors: int

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self) -> str:
        return (
            f"{self.name:<8} {len(self.latencies):>6} req  {self.throughput:>8.1f} req/s  "
            f"p50 {self.percentile(0.50):>7.2f} ms  p99 {self.percentile(0.99):>7.2f} ms  "
            f"errors {self.errors}"
        )


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load(
    name: str,
    port: int,
    path: str,
    bodies,
    *,
    requests: int,
    concurrency: int,
    max_seconds: float,
    expect: bytes,
    headers: dict[str, str] | None = None,
    status: int = 200,
) -> Run:
    """POST `requests` bodies over `concurrency` keep-alive connections."""
    lock = threading.Lock()
    counter = iter(range(requests))
    latencies: list[float] = []
    errors = [0]
    deadline = time.monotonic() + max_seconds
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Connection": "keep-alive",
        **(headers or {}),
    }

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        while time.monotonic() < deadline:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            body = bodies(n)
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                content = response.read()
                ok = response.status == status and expect in content
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = False
            elapsed = time.perf_counter() - started
            if ok:
                mine.append(elapsed)
            else:
                with lock:
                    errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Run(name, latencies, time.perf_counter() - started, errors[0])


def wait_ready(port: int, path: str, seconds: float = 60) -> bytes:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            conn.close()
            if response.status == 200:
                return body
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench: the server did not answer GET {path} within {seconds:.0f}s")


def database_url_for(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def make_tenant():
    from accounts.models import Organization
    from leadflow.tenancy import tenant_scope
    from leads.models import ActivityKind, CaptureForm, CaptureFormField, FieldType

    org = Organization.objects.create(name="Bench Inc", slug=f"bench-{secrets.token_hex(3)}")
    with tenant_scope(org):
        form = CaptureForm.objects.create(
            organization=org,
            name="Bench demo request",
            activity_kind=ActivityKind.DEMO_REQUEST,
            consent_text="Send me product news.",
            min_fill_seconds=2,
        )
        specs = [
            ("email", "Work email", FieldType.EMAIL, "email", True),
            ("first_name", "First name", FieldType.TEXT, "first_name", False),
            ("last_name", "Last name", FieldType.TEXT, "last_name", False),
            ("company", "Company", FieldType.TEXT, "company_name", False),
            ("message", "Message", FieldType.TEXTAREA, "custom", False),
        ]
        CaptureFormField.objects.bulk_create(
            CaptureFormField(
                organization=org,
                form=form,
                position=i,
                key=key,
                label=label,
                field_type=kind,
                maps_to=maps_to,
                required=required,
            )
            for i, (key, label, kind, maps_to, required) in enumerate(specs)
        )
    from accounts.apikeys import apikey_create
    from scoring.services import starter_rules_install

    with tenant_scope(org):
        starter_rules_install(organization_id=org.pk)  # the API's leads are scored
    api_key = apikey_create(organization=org, name="Bench", created_by=None)[1]
    return org, form, api_key


def outcome_counts(org, form) -> dict[str, int]:
    from django.db.models import Count

    from leadflow.tenancy import tenant_scope
    from leads.models import FormSubmission

    with tenant_scope(org):
        rows = (
            FormSubmission.objects.filter(form=form)
            .exclude(payload__has_key="floor")
            .values_list("outcome")
            .annotate(n=Count("pk"))
        )
        return dict(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=150, help="per target and slice")
    parser.add_argument("--slices", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker")
    parser.add_argument("--max-seconds", type=float, default=30, help="per target and slice")
    args = parser.parse_args()

    urls = service_urls("capture.py")
    if urls is None:
        return 2
    database_url, redis_url = urls
    server_env = bench_server_env()
    setup_django(server_env)
    from django.db import connection

    from leads.services.forms import TOKEN_KEY

    old_name = connection.settings_dict["NAME"]
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    server = None
    try:
        org, form, api_key = make_tenant()
        port = free_port()
        env = {
            **os.environ,
            **server_env,
            "DATABASE_URL": database_url_for(database_url, test_name),
            "BENCH_ORG_ID": str(org.pk),
            "BENCH_FORM_ID": str(form.pk),
            "PYTHONPATH": str(ROOT),
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "leadflow.wsgi:application",
                f"--bind=127.0.0.1:{port}",
                f"--workers={args.workers}",
                "--worker-class=gthread",
                f"--threads={args.threads}",
                "--keep-alive=30",
                "--log-level=warning",
            ],
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        capture_path = f"/f/{form.key}/"
        page = wait_ready(port, capture_path).decode()
        token = re.search(rf'name="{TOKEN_KEY}" value="([^"]+)"', page).group(1)
        time.sleep(form.min_fill_seconds + 0.2)  # a person takes at least this long

        run_id = secrets.token_hex(3)

        def capture_body(n: int) -> str:
            return urlencode(
                {
                    "email": f"visitor{n}.{run_id}@initech.com",
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "company": "Initech",
                    "message": "Please call me about pricing.",
                    "consent": "on",
                    "website": "",
                    TOKEN_KEY: token,
                    "page_url": "https://www.initech.com/pricing?utm_source=bench",
                }
            )

        def floor_body(n: int) -> str:
            return capture_body(n) + "&floor=1"

        def api_body(n: int) -> str:
            return json.dumps(
                {
                    "email": f"api{n}.{run_id}@initech.com",
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "title": "VP Marketing",
                    "country": "DE",
                    "company_name": "Initech",
                    "activity_kind": "demo_request",
                }
            )

        api_headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"}
        api = {"headers": api_headers, "status": 201}
        targets = [
            ("floor", "/bench/floor/", floor_body, b"ok", {}),
            ("capture", capture_path, capture_body, b"Thank you", {}),
            ("apifloor", "/bench/api-floor/", api_body, b"created", api),
            ("api", "/api/v1/leads", api_body, b"created", api),
        ]
        common = {"concurrency": args.concurrency, "max_seconds": args.max_seconds}
        for number, (name, path, bodies, expect, extra) in enumerate(targets):  # warm-up
            load(
                name,
                port,
                path,
                lambda n, bodies=bodies, number=number: bodies(number * 1000 + n),
                requests=300,
                expect=expect,
                **extra,
                **common,
            )
        # Alternate short slices of each, so a noisy neighbour on the machine
        # weighs on all targets alike; each slice uses fresh emails.
        runs: dict[str, list[Run]] = {name: [] for name, *_ in targets}
        for slice_no in range(args.slices):
            for number, (name, path, bodies, expect, extra) in enumerate(targets):
                base = 10**6 * (slice_no + 1) + number * 2 * 10**5
                runs[name].append(
                    load(
                        name,
                        port,
                        path,
                        lambda n, bodies=bodies, base=base: bodies(base + n),
                        requests=args.requests,
                        expect=expect,
                        **extra,
                        **common,
                    )
                )
        pooled = {
            name: Run(
                name,
                [x for r in rs for x in r.latencies],
                sum(r.seconds for r in rs),
                sum(r.errors for r in rs),
            )
            for name, rs in runs.items()
        }
        floor, cap = pooled["floor"], pooled["capture"]
        throughput_ratio = cap.throughput / floor.throughput
        p99_ratio = cap.percentile(0.99) / floor.percentile(0.99)
        slice_ratios = [
            c.throughput / f.throughput for f, c in zip(runs["floor"], runs["capture"], strict=True)
        ]
        counts = outcome_counts(org, form)
        print(
            f"gunicorn {args.workers} workers x {args.threads} threads (gthread), "
            f"{args.concurrency} keep-alive connections on loopback, "
            f"{args.slices} alternating slices of {args.requests} requests per target"
        )
        print(floor.line())
        print(cap.line())
        print(
            f"capture/floor throughput {throughput_ratio:.2f} (per slice: "
            f"median {statistics.median(slice_ratios):.2f}, "
            f"range {min(slice_ratios):.2f}-{max(slice_ratios):.2f}) "
            f"goal >= {GOAL_THROUGHPUT:.2f}: {verdict(throughput_ratio >= GOAL_THROUGHPUT)}"
        )
        print(
            f"capture/floor p99        {p99_ratio:.2f} "
            f"goal <= {GOAL_P99:.2f}: {verdict(p99_ratio <= GOAL_P99)}"
        )
        print(f"capture submissions by outcome: {counts}")
        api_floor, api_run = pooled["apifloor"], pooled["api"]
        print(api_floor.line())
        print(api_run.line())
        api_slowdown = api_floor.throughput / api_run.throughput if api_run.throughput else 0
        api_p50 = api_run.percentile(0.50) / api_floor.percentile(0.50)
        print(
            f"api floor/create throughput {api_slowdown:.2f}x, "
            f"create/floor p50 {api_p50:.2f}x, "
            f"p99 {api_run.percentile(0.99) / api_floor.percentile(0.99):.2f}x "
            f"goal <= {GOAL_API:.1f}x: {verdict(max(api_slowdown, api_p50) <= GOAL_API)}"
        )
        bad = floor.errors + cap.errors + sum(v for k, v in counts.items() if k != "pending")
        bad += api_floor.errors + api_run.errors
        return 1 if bad else 0
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        _drop_bench_queue(redis_url)
        connection.creation.destroy_test_db(old_name, verbosity=0)


def _drop_bench_queue(redis_url: str) -> None:
    """The enqueued processing tasks went to the bench's own queue; drop it."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(redis_url)
    client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    client.close()


if __name__ == "__main__":
    sys.exit(main())
