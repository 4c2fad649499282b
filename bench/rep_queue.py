"""Benchmark: the rep queue page at 10,000 and at 1,000,000 leads in the org,
against a floor of a bare org page through the same middleware.

    python scripts/with_services.py -- .venv/bin/python bench/rep_queue.py [--explain]

Needs PostgreSQL (DATABASE_URL, as scripts/with_services.py sets it). It creates
a throwaway database, a bystander organization, and one organization with an
admin and --reps sales reps in --teams teams (bench/rep_queue_data.py). The measured
rep holds 40 open leads (MQL to opportunity, SLA clocks running, some overdue)
at every size; the other reps hold the rest of the open leads, and every stage
is populated, with the assignments (current and ended), stage history, BANT
notes, opportunities and --activities-per-lead activities the services would
have written — all generated inside PostgreSQL.

At each size it times, alternating, best of --repeat (median shown too):
- page: GET of `pipeline:queue` as the logged-in rep, through the Django test
  client: the whole middleware stack, the real view, the template;
- floor: GET of a bare `@org_view` page under /o/<slug>/ answering a constant
  "ok" through the same stack (session, user, membership, tenant scope).

Then it grows the same tenant in place to --large leads and repeats. Printed:
page and floor ms, the page's SQL ms (its statements' sum: the part that could
depend on the tenant's size), page/floor (goal: <= 5x; also
as CPU time of this process, which a loaded machine disturbs less), growth large vs small (goal:
page <= 2x), the page's query count (must be equal at both sizes), each statement's
time, the lead list's time (as the admin, 50 rows) in SQL and outside it, with
--explain the EXPLAIN ANALYZE of the queue's main query, and with --profile a
cProfile of both pages (their functions by own time, then the project's own by
cumulative time). Loading
drops the lead/activity/company secondary indexes and rebuilds them after
(bench/rescore.py's bulk_load), then VACUUM ANALYZE. No timed assertions: the
figures are for people to read.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

# Run as a script, bench/ would come first on sys.path (where a file named like
# a standard module would shadow it): the repository root goes first instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from bench.common import (  # noqa: E402
    bench_parser,
    install_floor_urls,
    postgres_url,
    server_version,
    setup_django,
    source_static_storages,
)

ROOT = Path(__file__).resolve().parent.parent
GOAL_GROWTH = 2.0
GOAL_FLOOR_RATIO = 5.0  # the page's rendering must not dwarf the request's fixed cost
FLOOR_URLCONF = "bench_queue_urls"
TABLES = (
    "leads_company", "leads_lead", "leads_activity", "pipeline_assignment",
    "pipeline_stagetransition", "pipeline_opportunity", "pipeline_qualification",
)  # fmt: skip


def load(team, *, leads: int, per_lead: int, now) -> None:
    from bench import rep_queue_data as data
    from bench.rescore import bulk_load, vacuum
    from leadflow.core.tenancy import tenant_scope

    written: dict = {}
    with tenant_scope(team.organization):
        seconds = bulk_load(
            lambda: written.update(
                data.grow(team=team, leads=leads, activities_per_lead=per_lead, now=now)
            )
        )
    vacuum(*TABLES)
    print(
        f"  {team.organization.slug}: +{leads:,} leads, +{leads * per_lead:,} activities,"
        f" +{written['assignments']:,} assignments, +{written['transitions']:,} transitions,"
        f" +{written['deals']:,} BANT/opportunity rows in {seconds:.1f} s (+ VACUUM ANALYZE)",
        flush=True,
    )


def get(client, path: str, cpu: list | None = None) -> tuple[float, list[tuple[float, str]], str]:
    """One GET: its wall time, its SQL statements (seconds, SQL), and the body; its
    CPU time in this process (the database server's excluded) appended to `cpu`."""
    from django.db import connection

    from bench.rescore import StatementTimer

    statements = StatementTimer()
    with connection.execute_wrapper(statements):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(path)
        seconds = time.perf_counter() - started
        if cpu is not None:
            cpu.append(time.process_time() - started_cpu)
    if response.status_code != 200:
        raise SystemExit(f"bench: GET {path} answered {response.status_code}")
    return seconds, statements.statements, response.content.decode()


def explain_queue(team) -> None:
    from leadflow.core.tenancy import tenant_scope
    from pipeline import selectors
    from pipeline.views.queue import QUEUE_PAGE_SIZE

    with tenant_scope(team.organization):
        page = selectors.rep_queue(membership=team.rep)[:QUEUE_PAGE_SIZE]
        plan = page.explain(analyze=True, buffers=True)
    print("    EXPLAIN ANALYZE of the queue's page query:")
    for line in plan.splitlines():
        print("      " + line)


def run_size(client, team, label: str, *, repeat: int, explain: bool, profile: bool) -> dict:
    from django.urls import reverse

    from leadflow.core.tenancy import tenant_scope
    from leads.models import Lead

    with tenant_scope(team.organization):
        leads = Lead.objects.count()
    slug = team.organization.slug
    page, floor = reverse("pipeline:queue", kwargs={"org_slug": slug}), f"/o/{slug}/bench/floor/"
    print(f"\n== {label}: {leads:,} leads in the org", flush=True)
    for _ in range(3):  # warm up: templates compiled, connection and caches hot
        get(client, page), get(client, floor)
    # Alternate page and floor so a disturbance of a shared machine hits both.
    page_runs, sql_runs, floor_runs, page_cpu, floor_cpu = [], [], [], [], []
    for _ in range(repeat):
        seconds, statements, body = get(client, page, page_cpu)
        page_runs.append(seconds)
        sql_runs.append(sum(t for t, _ in statements))
        floor_runs.append(get(client, floor, floor_cpu)[0])
    rows = body.count('data-testid="queue-row"')
    print(f"    page: {rows} queue rows, {len(statements)} queries; the last run's:")
    for seconds, sql in statements:
        print(f"      {seconds * 1000:7.2f} ms  {sql[:96]}")
    if explain:
        explain_queue(team)
    if profile:
        profile_page(client, page, label="the rep queue")
    lead_list = lead_list_figures(team, repeat=repeat, profile=profile)
    return {
        "leads": leads,
        "page": min(page_runs),
        "page_median": statistics.median(page_runs),
        "sql": min(sql_runs),
        "floor": min(floor_runs),
        "floor_median": statistics.median(floor_runs),
        "page_cpu": statistics.median(page_cpu),
        "floor_cpu": statistics.median(floor_cpu),
        "queries": len(statements),
        "rows": rows,
        "lead_list": lead_list,
    }


def time_outside_sql(client, path: str, *, repeat: int) -> dict:
    """A page's best wall time, its SQL time, and the rest (rendering, Python)."""
    runs = []
    for _ in range(3):
        get(client, path)
    for _ in range(repeat):
        seconds, statements, _body = get(client, path)
        runs.append((seconds, sum(t for t, _ in statements), len(statements)))
    best = min(runs)
    return {"page": best[0], "sql": best[1], "outside": best[0] - best[1], "queries": best[2]}


def profile_page(client, path: str, *, label: str, top: int = 18) -> None:
    """cProfile of 20 GETs of a page: where its time outside SQL goes."""
    from bench.common import profiled

    seconds, _result, stats = profiled(lambda: [get(client, path) for _ in range(20)])
    print(f"\n    cProfile of 20 GETs of {label} ({seconds * 1000:.0f} ms profiled), by own time:")
    stats.sort_stats("tottime")
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:top]
    _print_profile_rows(rows)
    # By cumulative time, the project's own functions: which part of the page costs.
    print("    ... and the project's functions by cumulative time:")
    ours = [item for item in stats.stats.items() if item[0][0].startswith(str(ROOT) + "/")]
    ours = [item for item in ours if "/.venv/" not in item[0][0]]
    _print_profile_rows(sorted(ours, key=lambda item: item[1][3], reverse=True)[: top * 2])


def _print_profile_rows(rows) -> None:
    for (filename, line, function), (_cc, calls, tottime, cumtime, _callers) in rows:
        where = f"{Path(filename).name}:{line}({function})"
        print(
            f"      {tottime * 1000:8.1f} ms own {cumtime * 1000:8.1f} ms cum {calls:>7}  {where}"
        )


def lead_list_figures(team, *, repeat: int, profile: bool) -> dict:
    """The lead list page as the tenant's admin: time in SQL and outside it."""
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(team.admin.user)
    path = reverse("leads:lead_list", kwargs={"org_slug": team.organization.slug})
    figures = time_outside_sql(client, path, repeat=repeat)
    print(
        f"    lead list (admin, 50 rows): page {figures['page'] * 1000:.2f} ms, SQL"
        f" {figures['sql'] * 1000:.2f} ms, outside SQL {figures['outside'] * 1000:.2f} ms,"
        f" {figures['queries']} queries"
    )
    if profile:
        profile_page(client, path, label="the lead list")
    return figures


def report(small: dict, large: dict | None) -> None:
    print("\n== Results (best of the runs; median in brackets)")
    print(
        f"  {'':<6} {'leads':>10} {'page ms':>17} {'of it SQL':>10} {'floor ms':>16}"
        f" {'page/floor':>11} {'queries':>8} {'rows':>5}"
    )
    for label, r in (("small", small), ("large", large)):
        if r is None:
            continue
        ms = {k: r[k] * 1000 for k in ("page", "page_median", "sql", "floor", "floor_median")}
        print(
            f"  {label:<6} {r['leads']:>10,} {ms['page']:>8.2f} ({ms['page_median']:6.2f})"
            f" {ms['sql']:>10.2f} {ms['floor']:>7.2f} ({ms['floor_median']:6.2f})"
            f" {r['page'] / r['floor']:>10.1f}x {r['queries']:>8} {r['rows']:>5}"
        )
    for label, r in (("small", small), ("large", large)):
        if r is None:
            continue
        ratio = r["page"] / r["floor"]
        cpu = r["page_cpu"] / r["floor_cpu"]
        lead_list = {k: v * 1000 for k, v in r["lead_list"].items() if k != "queries"}
        print(
            f"  {label}: page/floor {ratio:.1f}x (goal <= {GOAL_FLOOR_RATIO:.0f}x)"
            f" {'OK' if ratio <= GOAL_FLOOR_RATIO else 'MISSED'}"
            f" (CPU time in this process, medians: page {r['page_cpu'] * 1000:.2f} ms,"
            f" floor {r['floor_cpu'] * 1000:.2f} ms, {cpu:.1f}x); lead list"
            f" {lead_list['page']:.2f} ms, of it outside SQL {lead_list['outside']:.2f} ms"
        )
    if large is None:
        return
    growth = {k: large[k] / small[k] for k in ("page", "sql", "floor")}
    verdict = "OK" if growth["page"] <= GOAL_GROWTH else "MISSED"
    print(
        f"  growth {large['leads']:,} vs {small['leads']:,} leads: page {growth['page']:.2f}x"
        f" (goal <= {GOAL_GROWTH:.0f}x) {verdict}; its SQL {growth['sql']:.2f}x;"
        f" floor {growth['floor']:.2f}x"
    )
    same = small["queries"] == large["queries"] and small["rows"] == large["rows"]
    print(
        f"  queries {small['queries']} / {large['queries']},"
        f" rows {small['rows']} / {large['rows']}: {'the same' if same else 'DIFFER'}"
    )


def main() -> int:
    parser = bench_parser(__doc__, leads=10_000, activities=5)
    parser.add_argument("--large", type=int, default=1_000_000, help="large tenant (0: skip)")
    parser.add_argument("--reps", type=int, default=24, help="sales reps (the measured one too)")
    parser.add_argument("--teams", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=50, help="timed requests per size")
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN ANALYZE of the queue's main query"
    )
    parser.add_argument(
        "--profile", action="store_true", help="print where the queue's and lead list's time goes"
    )
    args = parser.parse_args()
    if not postgres_url("rep_queue.py"):
        return 2
    if args.reps < 2 or args.leads < 100 or (args.large and args.large <= args.leads):
        parser.error("needs --reps >= 2, --leads >= 100 and --large above --leads (or 0)")
    setup_django(production=True, hosts="testserver")
    from django.db import connection
    from django.test import Client, override_settings
    from django.utils import timezone

    from bench import rep_queue_data as data

    started = time.perf_counter()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    from accounts.permissions import Perm

    install_floor_urls(FLOOR_URLCONF, Perm.WORK_LEADS)
    storages = source_static_storages()
    try:
        version = server_version()
        load_1m = os.getloadavg()[0]  # a busy machine makes the ms noisy; say so
        print(f"PostgreSQL {version}; {args.reps} reps in {args.teams} teams; load {load_1m:.1f}")
        now = timezone.now().replace(microsecond=0)
        bystander = data.make_sales_team(slug="bench-bystander", reps=3, teams=1)
        load(bystander, leads=2000, per_lead=args.activities_per_lead, now=now)
        team = data.make_sales_team(slug="bench-queue", reps=args.reps, teams=args.teams)
        client = Client()
        client.force_login(team.rep.user)
        with override_settings(ROOT_URLCONF=FLOOR_URLCONF, STORAGES=storages):
            load(team, leads=args.leads, per_lead=args.activities_per_lead, now=now)
            small = run_size(
                client,
                team,
                "small",
                repeat=args.repeat,
                explain=args.explain,
                profile=args.profile,
            )
            large = None
            if args.large:
                more = args.large - args.leads
                load(team, leads=more, per_lead=args.activities_per_lead, now=now)
                large = run_size(
                    client,
                    team,
                    "large",
                    repeat=args.repeat,
                    explain=args.explain,
                    profile=args.profile,
                )
        report(small, large)
        print(f"\n  whole bench: {time.perf_counter() - started:.0f} s")
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
