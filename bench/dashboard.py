"""Benchmark: the marketing dashboard at 10k and at 1M leads, in one run.

    python scripts/with_services.py -- .venv/bin/python bench/dashboard.py [--scale 100]

Needs PostgreSQL (DATABASE_URL, as scripts/with_services.py sets it). Builds a
throwaway database with one organization (10 campaigns, leads arriving over two
years, ~1 stage transition and 5 activities per lead, opportunities for decided
deals — bench/dashboard_data.py) and a bystander organization, then for the
small tenant and again after growing it `--scale` times:

- rollup: the full rebuild of the dashboard rollups (the nightly job) and an
  incremental refresh after 1,000 leads changed (the every-few-minutes job);
- fast: GET of the marketing dashboard (last 30 days, by day, vs the previous
  30), through the whole Django stack, reading the rollups — best of --repeat;
- live: the same page computed from the facts (no rollups), for comparison;
- funnel: GET of the funnel & velocity page (last 30 days: the cohort funnel,
  time in stage, speed to lead, SLA compliance, org-wide so from the rollups:
  cohorts and the velocity day histograms), against a
  floor measured in the same run: the same page for a period with no data yet
  (next January: the whole stack, its queries and the template, no rows).

Goal (issue 7): the dashboard at 1M leads within 3× its time at 10k.
Goal (issue 15): the funnel & velocity page at 1M leads within 2× its time at 10k.
`--explain FILE` writes EXPLAIN (ANALYZE, BUFFERS) of the funnel page's statements
at the large size.
Loading drops the secondary indexes of the loaded tables and rebuilds them
after (as a bulk load would), then VACUUM ANALYZE.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

# Run as a script, bench/ would come first on sys.path (where a file named like
# a standard module would shadow it): the repository root goes first instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from bench.common import bench_parser, postgres_url, setup_django  # noqa: E402

GOAL_GROWTH = 3.0
GOAL_FUNNEL_GROWTH = 2.0
TABLES = ["leads_lead", "leads_activity", "pipeline_stagetransition", "pipeline_opportunity",
          "pipeline_assignment"]  # fmt: skip


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def load(org_id: int, *, leads: int, activities_per_lead: int, campaigns, now, reps=None) -> None:
    from bench import dashboard_data as data
    from bench.rescore import execute, secondary_indexes, vacuum

    indexes = secondary_indexes(TABLES)
    start = time.perf_counter()
    for name, _ in indexes:
        execute(f'DROP INDEX "{name}"')
    execute("SET session_replication_role = replica")
    try:
        data.grow(organization_id=org_id, leads=leads, activities_per_lead=activities_per_lead,
                  campaigns=campaigns, now=now, reps=reps)  # fmt: skip
    finally:
        execute("SET session_replication_role = DEFAULT")
        for _, definition in indexes:
            execute(definition)
    seconds = time.perf_counter() - start
    vacuum(*TABLES)
    print(f"  loaded {leads:,} leads (+ history, {leads * activities_per_lead:,} activities)"
          f" in {seconds:.1f} s", flush=True)  # fmt: skip


def measure(org, client, url: str, *, repeat: int) -> dict[str, float]:
    from django.db import connection

    from leadflow.core.tenancy import tenant_scope
    from leads.models import Lead
    from pipeline.models import StageTransition
    from reports.models import LeadCohortRollup, RollupState
    from reports.services.rollups import rollup_refresh

    with tenant_scope(org):
        leads, moves = Lead.objects.count(), StageTransition.objects.count()
        start = time.perf_counter()
        rollup_refresh(organization_id=org.pk, full=True)
        full = time.perf_counter() - start
        rows = LeadCohortRollup.objects.count()
        # The refresh was 30 minutes ago and the leads were last touched before it;
        # since then 1,000 recent leads changed (stage moves, merges…): the next job's work.
        Lead.objects.update(updated_at=time_now() - _minutes(24 * 60))
        RollupState.objects.update(refreshed_at=time_now() - _minutes(30))
        ids = list(Lead.objects.order_by("-created_at").values_list("pk", flat=True)[:1000])
        Lead.objects.filter(pk__in=ids).update(updated_at=time_now())
        start = time.perf_counter()
        rollup_refresh(organization_id=org.pk)
        incremental = time.perf_counter() - start

    warm = client.get(url, secure=True)
    assert warm.status_code == 200, (warm.status_code, warm.content[:300])
    queries = []
    with connection.execute_wrapper(
        lambda execute, sql, *a: queries.append(sql) or execute(sql, *a)
    ):
        response = client.get(url, secure=True)
    assert response.context["as_of"] is not None, "the fast path was not taken"
    fast = best_of(repeat, lambda: client.get(url, secure=True))
    with tenant_scope(org):
        RollupState.objects.all().delete()  # no rollups: the page computes from the facts
    assert client.get(url, secure=True).context["as_of"] is None
    live = best_of(max(1, repeat // 3), lambda: client.get(url, secure=True))
    with tenant_scope(org):
        rollup_refresh(organization_id=org.pk, full=True)
    result = {"leads": leads, "moves": moves, "rows": rows, "full": full,
              "incremental": incremental, "fast": fast, "live": live,
              "queries": len(queries)}  # fmt: skip
    print(f"    {leads:>9,} leads, {moves:>9,} transitions, {rows:>7,} rollup rows:"
          f" rebuild {full:6.2f} s, incremental {incremental:5.2f} s,"
          f" page {fast * 1000:7.1f} ms fast / {live * 1000:8.1f} ms live,"
          f" {result['queries']} queries", flush=True)  # fmt: skip
    return result


def measure_funnel(client, url: str, *, repeat: int, explain: str = "") -> dict[str, float]:
    """The funnel & velocity page (last 30 days) and its floor (a period with no data)."""
    from django.db import connection

    next_year = time_now().year + 1
    empty = {"start": f"{next_year}-01-01", "end": f"{next_year}-01-30"}
    for params in ({}, empty):
        warm = client.get(url, params, secure=True)
        assert warm.status_code == 200, (warm.status_code, warm.content[:300])
        assert warm.context["velocity_as_of"] is not None, "velocity was not read from rollups"
    statements = []
    with connection.execute_wrapper(
        lambda execute, sql, params, *a: (
            statements.append((sql, params)) or execute(sql, params, *a)
        )
    ):
        client.get(url, secure=True)
    page = best_of(repeat, lambda: client.get(url, secure=True))
    floor = best_of(repeat, lambda: client.get(url, empty, secure=True))
    result = {"page": page, "floor": floor, "queries": len(statements)}
    print(f"    funnel & velocity page {page * 1000:7.1f} ms, floor {floor * 1000:6.1f} ms"
          f" (×{page / floor:.2f}), {len(statements)} queries", flush=True)  # fmt: skip
    if explain:
        with open(explain, "w") as out, connection.cursor() as cursor:
            jit_off = False
            for sql, params in statements:
                if sql.startswith("SELECT set_config("):
                    jit_off = True  # the page runs the next statement with these settings
                    continue
                if "pipeline_" in sql or "leads_lead" in sql:
                    for name, value in (("jit", "off"), ("work_mem", "'32MB'")):
                        cursor.execute(f"SET {name} = {value if jit_off else 'default'}")
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                    out.write(f"{sql}\n{params}\n{plan}\n\n")
                jit_off = False
            cursor.execute("RESET jit")
            cursor.execute("RESET work_mem")
        print(f"    plans written to {explain}", flush=True)
    return result


def time_now():
    from django.utils import timezone

    return timezone.now()


def _minutes(n: int):
    from datetime import timedelta

    return timedelta(minutes=n)


def main() -> int:
    parser = bench_parser(__doc__, leads=10_000, activities=5)
    parser.add_argument("--scale", type=int, default=100, help="large tenant = leads × scale")
    parser.add_argument("--repeat", type=int, default=9, help="page loads timed (best kept)")
    parser.add_argument("--explain", default="", help="write the funnel page's plans here (1M)")
    args = parser.parse_args()
    if not postgres_url("dashboard.py"):
        return 2
    setup_django(production=True, hosts="testserver,localhost")
    from django.conf import settings
    from django.db import connection

    from bench.common import source_static_storages, throwaway_database

    # Production settings, but static files from the source tree (no collectstatic here).
    settings.STORAGES = source_static_storages()
    from django.test import Client
    from django.urls import reverse

    from accounts.models import Membership, Organization, Role, User
    from bench import dashboard_data as data
    from leadflow.core.tenancy import tenant_scope

    started = time.perf_counter()
    with throwaway_database():
        now = time_now().replace(microsecond=0)
        org = Organization.objects.create(name="Bench Dashboard", slug="bench-dashboard")
        other = Organization.objects.create(name="Bystander", slug="bench-bystander")
        user = User.objects.create_user("admin@bench.example", "x")
        Membership.objects.create(organization=org, user=user, role=Role.ADMIN)
        client = Client()
        client.force_login(user)
        url = reverse("reports:marketing", kwargs={"org_slug": org.slug})
        funnel_url = reverse("reports:funnel", kwargs={"org_slug": org.slug})
        with tenant_scope(other):
            load(other.pk, leads=2000, activities_per_lead=1,
                 campaigns=data.add_campaigns(other.pk), now=now)  # fmt: skip
        with tenant_scope(org):
            campaigns = data.add_campaigns(org.pk)
            reps = data.add_reps(org.pk)
            load(org.pk, leads=args.leads, activities_per_lead=args.activities_per_lead,
                 campaigns=campaigns, now=now, reps=reps)  # fmt: skip
        print("  small tenant:")
        small = measure(org, client, url, repeat=args.repeat)
        small_funnel = measure_funnel(client, funnel_url, repeat=args.repeat)
        large = None
        if args.scale > 1:
            with tenant_scope(org):
                load(org.pk, leads=args.leads * (args.scale - 1),
                     activities_per_lead=args.activities_per_lead, campaigns=campaigns,
                     now=now, reps=reps)  # fmt: skip
            print("  large tenant:")
            large = measure(org, client, url, repeat=args.repeat)
            large_funnel = measure_funnel(client, funnel_url, repeat=args.repeat,
                                          explain=args.explain)  # fmt: skip
        if large:
            growth = large["fast"] / small["fast"]
            verdict = "OK" if growth <= GOAL_GROWTH else "MISSED"
            print(f"\n  dashboard growth {small['leads']:,} → {large['leads']:,} leads:"
                  f" {growth:.2f}× (goal ≤ {GOAL_GROWTH:.0f}×) {verdict};"
                  f" live path {large['live'] / small['live']:.1f}×;"
                  f" same query count: {small['queries'] == large['queries']}")  # fmt: skip
            growth = large_funnel["page"] / small_funnel["page"]
            same = small_funnel["queries"] == large_funnel["queries"]
            verdict = "OK" if growth <= GOAL_FUNNEL_GROWTH else "MISSED"
            print(f"  funnel & velocity growth: {growth:.2f}× (goal ≤ {GOAL_FUNNEL_GROWTH:.0f}×)"
                  f" {verdict}; page/floor {small_funnel['page'] / small_funnel['floor']:.2f}"
                  f" → {large_funnel['page'] / large_funnel['floor']:.2f};"
                  f" same query count: {same}")  # fmt: skip
        print(f"  whole bench: {time.perf_counter() - started:.0f} s")
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
