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

Then (issue 15) capture *processing* latency: from the hosted-form POST to the
lead scored, qualified (MQL) and routed to a rep, measured by real workers laid
out as docker-compose runs them (one for the capture group, one for the bulk
group, leadflow/core/queues.py), first idle, then while a tenant rescore of
--rescore-leads leads (seeded set-based in SQL, with 2 activities each and the
20 rules of bench/rescore_data.py) runs on the bulk worker.
Goal: p95 while rescoring <= 2x the p95 idle. --rescore-leads 0 skips this
phase, --skip-throughput the first one.

The throughput phase also measures the single-lead API create (POST /api/v1/leads with an API
key, a lead that the organization's starter rules score, with an activity)
against its own floor (bench/urls.py: the key authenticated as the API does, then
one INSERT of the lead row). Goal (issue 15): the API create within 2x its
floor — throughput >= 50% of the floor's, p50 <= 2x the floor's. --api-only
measures just these two (no hosted-form targets).

--profile N profiles instead, in this process through Django's test client (no
gunicorn): N API creates and N floor requests, each with its SQL statements
(count and time per request) and a cProfile by CPU time (waits for PostgreSQL
and Redis are not CPU time: the SQL lines show those).
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
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import server_env as bench_server_env
from bench.common import service_urls

ROOT = Path(__file__).resolve().parent.parent
GOAL_THROUGHPUT = 0.5
GOAL_P99 = 3.0
GOAL_PROCESSING_P95 = 2.0
GOAL_API = 2.0  # the API create within 2x its floor
# What --profile lists: the project's code and the framework's entry points.
PROFILED = r"leadflow|leads|scoring|pipeline|accounts|nurture|celery/app/task|ninja/operation"


@dataclass
class Run:
    name: str
    latencies: list[float]
    seconds: float
    errors: int
    cpu: dict[str, float] = field(default_factory=dict)  # seconds by process group

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

    def cpu_line(self) -> str:
        """CPU per request by process group (where the machine's time went)."""
        if not self.cpu or not self.latencies:
            return ""
        parts = ", ".join(f"{g} {self.cpu[g] * 1000 / len(self.latencies):.2f}" for g in CPU_GROUPS)
        return f"{self.name:<8} CPU ms per request: {parts}"


def analyze() -> None:
    """Statistics, as a live database has them: autovacuum would gather them a
    minute into the run (its naptime), and a throwaway database that has none
    plans single-lead lookups as scans of the whole tenant."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
CPU_GROUPS = ("gunicorn", "postgres", "postgres-bg", "redis", "client")
# PostgreSQL's own processes (autovacuum, WAL writer, …), apart from its backends.
_PG_BACKGROUND = ("autovacuum", "walwriter", "checkpointer", "background", "logical", "archiver")


def cpu_snapshot() -> dict[int, tuple[str, float]]:
    """CPU seconds used so far by each of the machine's processes of interest,
    with its group: the app (gunicorn), PostgreSQL's backends (the statements)
    and its background processes, Redis and this process (the load client);
    Linux /proc only (else empty)."""
    found: dict[int, tuple[str, float]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(entry.name) == os.getpid():
            group = "client"
        elif "gunicorn" in cmdline:
            group = "gunicorn"
        elif cmdline.startswith("postgres: "):
            words = cmdline.split()
            group = "postgres-bg" if words[1:2] and words[1] in _PG_BACKGROUND else "postgres"
        elif "/postgres " in cmdline:  # the postmaster
            group = "postgres-bg"
        elif "redis-server" in cmdline:
            group = "redis"
        else:
            continue
        found[int(entry.name)] = (group, (int(fields[11]) + int(fields[12])) / _TICK)
    return found


def cpu_used(before: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds by group since `before`, per process: one that started since
    counts from zero, one that exited meanwhile is not counted."""
    totals = dict.fromkeys(CPU_GROUPS, 0.0)
    for pid, (group, used) in cpu_snapshot().items():
        totals[group] += used - before.get(pid, (group, 0.0))[1]
    return totals


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
    cpu_before = cpu_snapshot()
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    cpu = cpu_used(cpu_before)
    return Run(name, latencies, seconds, errors[0], cpu)


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
    from leadflow.core.tenancy import tenant_scope
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

    from leadflow.core.tenancy import tenant_scope
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
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--rescore-leads", type=int, default=1_000_000, help="tenant size; 0: no latency phase"
    )
    parser.add_argument("--samples", type=int, default=40, help="submissions idle and busy")
    parser.add_argument("--burst", type=int, default=300, help="submissions posted at once")
    parser.add_argument(
        "--api-only", action="store_true", help="throughput: the API create and its floor only"
    )
    parser.add_argument(
        "--profile", type=int, default=0, help="profile N API creates in-process instead"
    )
    parser.add_argument("--profile-dump", default="", help="--profile: write DIR/{floor,api}.prof")
    args = parser.parse_args()

    urls = service_urls("capture.py")
    if urls is None:
        return 2
    database_url, redis_url = urls
    server_env = bench_server_env()
    setup_django(server_env)
    from django.db import connection

    from leads.services.capture_forms import TOKEN_KEY

    old_name = connection.settings_dict["NAME"]
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    server = None
    failed = 0
    try:
        if args.profile:
            profile_api(args.profile, args.profile_dump)
            return 0
        if args.rescore_leads:
            failed += processing_latency(
                args, database_url_for(database_url, test_name), server_env
            )
        if args.skip_throughput:
            return failed
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
        if args.api_only:
            targets = targets[2:]
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
        analyze()
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
                {g: sum(r.cpu.get(g, 0.0) for r in rs) for g in CPU_GROUPS},
            )
            for name, rs in runs.items()
        }
        print(
            f"gunicorn {args.workers} workers x {args.threads} threads (gthread), "
            f"{args.concurrency} keep-alive connections on loopback, "
            f"{args.slices} alternating slices of {args.requests} requests per target; "
            f"load average {load_average()}"
        )
        bad = 0
        if not args.api_only:
            bad += form_verdict(pooled, runs, outcome_counts(org, form))
        api_floor, api_run = pooled["apifloor"], pooled["api"]
        print(api_floor.line())
        print(api_run.line())
        for run in (api_floor, api_run):
            print(run.cpu_line())
        api_slowdown = api_floor.throughput / api_run.throughput if api_run.throughput else 0
        api_p50 = api_run.percentile(0.50) / api_floor.percentile(0.50)
        print(
            f"api floor/create throughput {api_slowdown:.2f}x, "
            f"create/floor p50 {api_p50:.2f}x, "
            f"p99 {api_run.percentile(0.99) / api_floor.percentile(0.99):.2f}x "
            f"goal <= {GOAL_API:.1f}x: {verdict(max(api_slowdown, api_p50) <= GOAL_API)}"
        )
        bad += api_floor.errors + api_run.errors
        return 1 if bad or failed else 0
    finally:
        if server is not None:
            stop(server)
        _drop_bench_queue(redis_url)
        connection.creation.destroy_test_db(old_name, verbosity=0)


def form_verdict(pooled: dict[str, Run], runs: dict[str, list[Run]], counts: dict) -> int:
    """Print the hosted-form figures; the number of failures."""
    floor, cap = pooled["floor"], pooled["capture"]
    throughput_ratio = cap.throughput / floor.throughput
    p99_ratio = cap.percentile(0.99) / floor.percentile(0.99)
    slice_ratios = [
        c.throughput / f.throughput for f, c in zip(runs["floor"], runs["capture"], strict=True)
    ]
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
    return floor.errors + cap.errors + sum(v for k, v in counts.items() if k != "pending")


# --- In-process profile of the API create ----------------------------------------------


def profile_api(count: int, dump_dir: str = "") -> None:
    """N API creates and N floor requests through the test client: statements
    per request (count, time) and a cProfile by CPU time."""
    import cProfile
    import pstats
    from collections import Counter

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    org, form, api_key = make_tenant()
    os.environ["BENCH_ORG_ID"], os.environ["BENCH_FORM_ID"] = str(org.pk), str(form.pk)
    client = Client(HTTP_HOST="localhost", headers={"Authorization": f"Bearer {api_key}"})
    run_id = secrets.token_hex(3)

    def post(path: str, n: int) -> None:
        body = {"email": f"api{n}.{run_id}@initech.com", "first_name": "Ada"}
        body |= {"last_name": "Lovelace", "title": "VP Marketing", "country": "DE"}
        body |= {"company_name": "Initech", "activity_kind": "demo_request"}
        response = client.post(path, json.dumps(body), content_type="application/json")
        if response.status_code != 201:
            raise SystemExit(f"bench: {path} answered {response.status_code}")

    print(f"in-process profile, {count} requests each; load average {load_average()}")
    for number, (name, path) in enumerate(
        (("floor", "/bench/api-floor/"), ("api", "/api/v1/leads")), start=1
    ):
        for n in range(100):  # warm-up: caches, connections, the compiled scores SELECT
            post(path, number * 10**7 + n)
        analyze()
        seconds, cpu = time.perf_counter(), time.process_time()
        with CaptureQueriesContext(connection) as ctx:
            for n in range(count):
                post(path, number * 10**7 + 10**6 + n)
        seconds, cpu = time.perf_counter() - seconds, time.process_time() - cpu
        per_statement: Counter[str] = Counter()
        for query in ctx.captured_queries:
            per_statement[query["sql"][:60]] += float(query["time"])
        sql_ms = sum(per_statement.values()) * 1000 / count
        print(
            f"{name:<6} {seconds * 1000 / count:6.2f} ms per request, of it CPU "
            f"{cpu * 1000 / count:.2f} ms, SQL {sql_ms:.2f} ms in "
            f"{len(ctx.captured_queries) / count:.0f} statements:"
        )
        for sql, total in per_statement.most_common():
            print(f"    {total * 1000 / count:6.2f} ms  {sql}")
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        for n in range(count):
            post(path, number * 10**7 + 2 * 10**6 + n)
        profile.disable()
        stats = pstats.Stats(profile)
        if dump_dir:  # for a closer look: python -m pstats DIR/api.prof
            stats.dump_stats(Path(dump_dir) / f"{name}.prof")
        stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(PROFILED, 40)


# --- Processing latency: idle vs while a tenant rescore runs ------------------------


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_routed_tenant():
    """An organization whose VPs score 60 (threshold 50) and go to its one rep."""
    from accounts.models import Membership, Organization, Role, User
    from leadflow.core.tenancy import tenant_scope
    from leads.models import CaptureForm, CaptureFormField, FieldType
    from pipeline.models import Team, TeamMember
    from scoring.models import RuleKind, ScoringRule, ScoringSettings

    org = Organization.objects.create(name="Speedy Inc", slug=f"speedy-{secrets.token_hex(3)}")
    user = User.objects.create_user(email=f"rep-{secrets.token_hex(3)}@speedy.example")
    with tenant_scope(org):
        rep = Membership.objects.create(organization=org, user=user, role=Role.SALES_REP)
        team = Team.objects.create(organization=org, name="Inbound", is_default=True)
        TeamMember.objects.create(organization=org, team=team, membership=rep, capacity=10**6)
        ScoringSettings.objects.create(organization=org, mql_threshold=50)
        ScoringRule.objects.create(
            organization=org,
            name="VP",
            kind=RuleKind.FIT,
            points=60,
            field="title",
            operator="contains",
            value="vp",
        )
        form = CaptureForm.objects.create(organization=org, name="Demo", min_fill_seconds=1)
        for i, (key, kind, maps_to) in enumerate(
            [("email", FieldType.EMAIL, "email"), ("title", FieldType.TEXT, "title")]
        ):
            CaptureFormField.objects.create(
                organization=org,
                form=form,
                position=i,
                key=key,
                label=key,
                field_type=kind,
                maps_to=maps_to,
                required=key == "email",
            )
    return org, form


def make_rescore_tenant(leads: int) -> int:
    """A second organization with `leads` leads (2 activities each) and 20 rules."""
    from django.utils import timezone

    from accounts.models import Organization
    from bench import rescore_data
    from bench.rescore import grow
    from leadflow.core.tenancy import tenant_scope

    org = Organization.objects.create(name="Bulk Corp", slug=f"bulk-{secrets.token_hex(3)}")
    with tenant_scope(org):
        rescore_data.install_rules(org)
        started = time.perf_counter()
        grow(org.pk, leads=leads, activities=2 * leads, now=timezone.now())
    print(f"  seeded {leads:,} leads in {time.perf_counter() - started:.0f} s", flush=True)
    return org.pk


def start_worker(group: str, env: dict, concurrency: int, log_dir: Path) -> subprocess.Popen:
    from django.conf import settings

    from leadflow.core.queues import group_queues

    queues = ",".join(group_queues(group, settings.CELERY_ORG_SHARDS))
    log = open(log_dir / f"worker-{group}.log", "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "leadflow", "worker", "-Q", queues,
            f"--hostname={group}@%h", "--pool=threads", f"--concurrency={concurrency}",
            "--without-mingle", "--without-gossip", "--loglevel=WARNING",
        ],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def routed_at(org_id: int, email: str) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pipeline_assignment a JOIN leads_lead l ON l.id = a.lead_id"
            " WHERE l.organization_id = %s AND l.email = %s AND a.is_current",
            [org_id, email],
        )
        return cursor.fetchone() is not None


def burst(port: int, form, token: str, org_id: int, n: int) -> tuple[float, str]:
    """n submissions posted at once; seconds until the last is scored and routed
    (the capture worker's processing throughput)."""
    from django.db import connection

    from leads.services.capture_forms import TOKEN_KEY

    tag = secrets.token_hex(3)

    def body(i: int) -> str:
        email = f"burst{i}.{tag}@initech.com"
        return urlencode({"email": email, "title": "VP Sales", TOKEN_KEY: token})

    def done() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pipeline_assignment a JOIN leads_lead l ON l.id = a.lead_id"
                " WHERE l.organization_id = %s AND l.email LIKE %s AND a.is_current",
                [org_id, f"burst%.{tag}@initech.com"],
            )
            return cursor.fetchone()[0]

    started = time.perf_counter()
    posted = load(
        "burst", port, f"/f/{form.key}/", body,
        requests=n, concurrency=8, max_seconds=120, expect=b"",
    )  # fmt: skip
    if posted.errors:
        raise SystemExit(f"bench: {posted.errors} burst posts failed")
    deadline = time.monotonic() + 600
    while done() < n:
        if time.monotonic() > deadline:
            raise SystemExit("bench: the burst was not processed within 10 minutes")
        time.sleep(0.05)
    return time.perf_counter() - started, load_average()


def processing_latency(args, database_url: str, server_env: dict) -> int:
    """Submit → scored and routed, idle and during a tenant rescore; 1 if missed."""
    import tempfile

    from celery import current_app

    from leadflow.core import queues
    from leadflow.core.tenancy import tenant_scope
    from leads.services.capture_forms import TOKEN_KEY
    from scoring.models import RescoreJob, RescoreStatus
    from scoring.tasks import run_rescore_job

    print(f"processing latency: load average {load_average()} before seeding", flush=True)
    org, form = make_routed_tenant()
    bulk_org_id = make_rescore_tenant(args.rescore_leads)
    env = {
        **os.environ,
        **server_env,
        "DATABASE_URL": database_url,
        "BENCH_REAL_QUEUES": "1",
        "PYTHONPATH": str(ROOT),
    }
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-capture-"))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "leadflow.wsgi:application",
                f"--bind=127.0.0.1:{port}",
                "--workers=1",
                "--worker-class=gthread",
                "--threads=4",
                "--log-level=warning",
            ],
            env=env,
            cwd=ROOT,
            start_new_session=True,
        ),
        start_worker("capture", env, 2, log_dir),
        start_worker("bulk", env, 1, log_dir),
    ]
    try:
        page = wait_ready(port, f"/f/{form.key}/").decode()
        token = re.search(rf'name="{TOKEN_KEY}" value="([^"]+)"', page).group(1)
        time.sleep(form.min_fill_seconds + 0.2)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        counter = iter(range(10**6))

        def one() -> float:
            email = f"vp{next(counter)}.{secrets.token_hex(2)}@initech.com"
            body = urlencode({"email": email, "title": "VP Sales", TOKEN_KEY: token})
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            started = time.perf_counter()
            conn.request("POST", f"/f/{form.key}/", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            conn.close()
            assert response.status in (200, 302), response.status
            deadline = time.monotonic() + 120
            while not routed_at(org.pk, email):
                if time.monotonic() > deadline:
                    raise SystemExit(f"bench: {email} was not routed within 120 s")
                time.sleep(0.005)
            time.sleep(0.2)  # one visitor at a time: latency, not throughput
            return time.perf_counter() - started - 0.2

        for _ in range(5):  # warm up the workers and the server
            one()
        idle = Run("idle", [one() for _ in range(args.samples)], 1, 0)
        idle_load = load_average()
        burst_seconds, burst_load = burst(port, form, token, org.pk, args.burst)
        with tenant_scope(bulk_org_id):
            job = RescoreJob.objects.create(organization_id=bulk_org_id, reason="bench")
        run_rescore_job.apply_async(
            kwargs={"organization_id": bulk_org_id, "job_id": job.pk}, queue=queues.SCORING
        )

        def status() -> str:
            with tenant_scope(bulk_org_id):
                return RescoreJob.objects.values_list("status", flat=True).get(pk=job.pk)

        while status() == RescoreStatus.QUEUED:
            time.sleep(0.05)
        rescore_started = time.perf_counter()
        busy_samples = []
        while len(busy_samples) < args.samples and status() != RescoreStatus.DONE:
            busy_samples.append(one())
        busy_load = load_average()
        while status() != RescoreStatus.DONE:
            time.sleep(0.2)
        rescore_seconds = time.perf_counter() - rescore_started
        busy = Run("rescore", busy_samples, 1, 0)
    finally:
        for proc in procs:
            stop(proc)
        current_app.control.purge()
    ratio = busy.percentile(0.95) / idle.percentile(0.95) if busy.latencies else float("nan")
    print(
        "capture processing (submit → scored, MQL, routed), one visitor at a time; "
        "workers: capture group x2 threads, bulk group x1"
    )
    for run, load in ((idle, idle_load), (busy, busy_load)):
        print(
            f"  {run.name:<8} {len(run.latencies):>3} submissions  "
            f"p50 {run.percentile(0.5):7.1f} ms  p95 {run.percentile(0.95):7.1f} ms  "
            f"load average {load}"
        )
    print(
        f"  burst    {args.burst:>3} submissions posted at once (8 connections): all scored and"
        f" routed in {burst_seconds:.1f} s = {args.burst / burst_seconds:.0f}/s"
        f"  load average {burst_load}"
    )
    print(
        f"  rescore of {args.rescore_leads:,} leads took {rescore_seconds:.1f} s "
        f"({args.rescore_leads / rescore_seconds:,.0f} leads/s) on the bulk worker"
    )
    met = busy.latencies and ratio <= GOAL_PROCESSING_P95
    print(
        f"  p95 while rescoring / p95 idle {ratio:.2f} "
        f"goal <= {GOAL_PROCESSING_P95:.2f}: {verdict(bool(met))}",
        flush=True,
    )
    return 0 if met else 1


def _drop_bench_queue(redis_url: str) -> None:
    """The enqueued processing tasks went to the bench's own queue; drop it."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(redis_url)
    client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    client.close()


if __name__ == "__main__":
    sys.exit(main())
