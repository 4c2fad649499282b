"""Benchmark: the lead list, a search with matches, a search without matches, the
list's next page and a lead's detail at 10,000 and at 1,000,000 leads in the
org, each against a floor of a bare org page through the same middleware.

    python scripts/with_services.py -- .venv/bin/python bench/lead_list.py [--explain]

Needs PostgreSQL (DATABASE_URL, as scripts/with_services.py sets it). It creates
a throwaway database, a bystander organization with --bystander leads, and one
organization with an admin and --leads leads (bench/lead_list_data.py: varied
names, 60% in a company, --activities-per-lead activities), all generated inside
PostgreSQL with the secondary indexes dropped and rebuilt after (bench/rescore.py's
bulk_load), then VACUUM ANALYZE.

At each size it times, alternating, best of --repeat (median shown too), GETs
through the Django test client as the admin — the whole middleware stack, the
real view, the template:
- list: the lead list as it opens (newest first, 50 a page);
- search+: `?q=quenby`, a surname every 100th lead has (100 matches at 10,000
  leads, 10,000 at 1,000,000: a full page, and a count that reaches the cap);
- search-: `?q=zzqxv`, which nothing matches;
- next: the list's second page (its keyset cursor);
- detail: one lead's page;
- floor: a bare `@org_view` page under /o/<slug>/ answering a constant "ok".

Then it grows the same tenant in place to --large leads and repeats. Printed per
page: ms, the SQL part of it, page/floor, the query count and the rows shown; then
the growth from the small to the large tenant against the goals (list <= 1.5x,
searches <= 2x, list within 3x of the floor at the large size), and with --explain
the EXPLAIN ANALYZE of each page's two slowest statements at the large size. No
timed assertions: the figures are for people to read.
"""

from __future__ import annotations

import html
import os
import re
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
FLOOR_URLCONF = "bench_lead_list_urls"
TABLES = ("leads_company", "leads_lead", "leads_activity")
GOALS = {"list": 1.5, "next": 1.5, "search+": 2.0, "search-": 2.0}  # growth, large vs small
GOAL_FLOOR = 3.0  # the list at the large size, against the floor


class Statements:
    """Every statement of a request: seconds, SQL and parameters."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, str, object]] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.rows.append((time.perf_counter() - started, sql, params))


def get(client, path: str) -> tuple[float, Statements, object]:
    from django.db import connection

    statements = Statements()
    with connection.execute_wrapper(statements):
        started = time.perf_counter()
        response = client.get(path)
        seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"bench: GET {path} answered {response.status_code}")
    return seconds, statements, response


def load(organization, *, leads: int, per_lead: int, now) -> None:
    from bench import lead_list_data as data
    from bench.rescore import bulk_load, vacuum

    seconds = bulk_load(
        lambda: data.grow(
            organization_id=organization.pk, leads=leads, activities_per_lead=per_lead, now=now
        )
    )
    vacuum(*TABLES)
    print(
        f"  {organization.slug}: +{leads:,} leads, +{leads * per_lead:,} activities"
        f" in {seconds:.1f} s (with index rebuild; + VACUUM ANALYZE)",
        flush=True,
    )


def pages(client, organization) -> dict[str, str]:
    from django.urls import reverse

    from bench.lead_list_data import NO_MATCH, SEARCH_NAME
    from leadflow.core.tenancy import tenant_scope
    from leads.models import Lead

    slug = organization.slug
    listing = reverse("leads:lead_list", kwargs={"org_slug": slug})
    with tenant_scope(organization):
        lead_id = Lead.objects.order_by("pk").values_list("pk", flat=True)[0]
    body = get(client, listing)[2].content.decode()
    following = html.unescape(re.search(r'href="([^"]*)" rel="next"', body).group(1))
    return {
        "list": listing,
        "search+": f"{listing}?q={SEARCH_NAME.lower()}",
        "search-": f"{listing}?q={NO_MATCH}",
        "next": listing + following,
        "detail": reverse("leads:lead_detail", kwargs={"org_slug": slug, "lead_id": lead_id}),
        "floor": f"/o/{slug}/bench/floor/",
    }


def explain(statements: Statements, label: str) -> None:
    from django.db import connection

    print(f"    EXPLAIN ANALYZE of {label}'s two slowest statements:")
    for _seconds, sql, params in sorted(statements.rows, key=lambda r: r[0], reverse=True)[:2]:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            for (line,) in cursor.fetchall():
                print("      " + line)


def run_size(
    client, organization, label: str, *, repeat: int, explain_plans: bool, profile: int = 0
) -> dict:
    from leadflow.core.tenancy import tenant_scope
    from leads.models import Lead

    with tenant_scope(organization):
        leads = Lead.objects.count()
    urls = pages(client, organization)
    print(f"\n== {label}: {leads:,} leads in the org (load {os.getloadavg()[0]:.1f})", flush=True)
    for _ in range(3):  # warm up: templates compiled, connection and caches hot
        for path in urls.values():
            get(client, path)
    runs: dict[str, list[float]] = {name: [] for name in urls}
    sql: dict[str, list[float]] = {name: [] for name in urls}
    last: dict[str, tuple[Statements, object]] = {}
    for _ in range(repeat):  # alternate, so a disturbance of the machine hits every page
        for name, path in urls.items():
            seconds, statements, response = get(client, path)
            runs[name].append(seconds)
            sql[name].append(sum(t for t, _, _ in statements.rows))
            last[name] = (statements, response)
    result = {"leads": leads, "pages": {}}
    for name in urls:
        statements, response = last[name]
        body = response.content.decode()
        shown = re.search(r'data-testid="page-range">([^<]*)<', body)
        result["pages"][name] = {
            "best": min(runs[name]),
            "median": statistics.median(runs[name]),
            "sql": min(sql[name]),
            "queries": len(statements.rows),
            "rows": body.count('name="lead_ids"'),
            "shown": html.unescape(shown.group(1)) if shown else "",
        }
        if name != "floor":
            print(f"    {name}: {len(statements.rows)} queries; the last run's:")
            for seconds, statement, _ in statements.rows:
                print(f"      {seconds * 1000:7.2f} ms  {' '.join(statement.split())[:100]}")
        if explain_plans and name not in ("floor", "detail"):
            explain(statements, name)
    if profile:
        profile_pages(client, urls, profile)
    return result


def profile_pages(client, urls: dict[str, str], count: int) -> None:
    """cProfile `count` requests of the list and of the floor: where the time
    outside SQL goes."""
    import pstats

    from bench.common import profiled

    for name in ("list", "floor"):
        seconds, _, stats = profiled(
            lambda path=urls[name]: [get(client, path) for _ in range(count)]
        )
        print(f"    profile of {count} x {name}: {seconds * 1000 / count:.2f} ms each")
        stats.sort_stats(pstats.SortKey.TIME).print_stats(25)
        stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(60)


def report(small: dict, large: dict | None) -> None:
    print("\n== Results (best of the runs; median in brackets)")
    print(
        f"  {'':<6} {'page':<8} {'leads':>10} {'ms':>17} {'of it SQL':>10}"
        f" {'/floor':>7} {'queries':>8} {'rows':>5}  shown as"
    )
    for label, r in (("small", small), ("large", large)):
        if r is None:
            continue
        floor = r["pages"]["floor"]["best"]
        for name, p in r["pages"].items():
            print(
                f"  {label:<6} {name:<8} {r['leads']:>10,} {p['best'] * 1000:>8.2f}"
                f" ({p['median'] * 1000:6.2f}) {p['sql'] * 1000:>10.2f}"
                f" {p['best'] / floor:>6.1f}x {p['queries']:>8} {p['rows']:>5}  {p['shown']}"
            )
    if large is None:
        return
    print(f"\n  growth {large['leads']:,} vs {small['leads']:,} leads:")
    for name in large["pages"]:
        s, g = small["pages"][name], large["pages"][name]
        growth = g["best"] / s["best"]
        goal = GOALS.get(name)
        verdict = ""
        if goal is not None:
            verdict = f" (goal <= {goal}x) {'OK' if growth <= goal else 'MISSED'}"
        same = "same" if s["queries"] == g["queries"] else "DIFFER"
        print(
            f"    {name:<8} {growth:5.2f}x{verdict}; its SQL {g['sql'] / s['sql']:.2f}x;"
            f" queries {s['queries']} / {g['queries']} ({same})"
        )
    ratio = large["pages"]["list"]["best"] / large["pages"]["floor"]["best"]
    verdict = "OK" if ratio <= GOAL_FLOOR else "MISSED"
    print(
        f"  list at {large['leads']:,} leads: {ratio:.1f}x the floor"
        f" (goal <= {GOAL_FLOOR:.0f}x) {verdict}"
    )


def main() -> int:
    parser = bench_parser(__doc__, leads=10_000, activities=2)
    parser.add_argument("--large", type=int, default=1_000_000, help="large tenant (0: skip)")
    parser.add_argument("--bystander", type=int, default=20_000, help="another tenant's leads")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page and size")
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE each page's slowest statements"
    )
    parser.add_argument(
        "--profile", type=int, default=0, help="cProfile this many list and floor requests"
    )
    args = parser.parse_args()
    if not postgres_url("lead_list.py"):
        return 2
    if args.leads < 200 or (args.large and args.large <= args.leads):
        parser.error("needs --leads >= 200 and --large above --leads (or 0)")
    setup_django(production=True, hosts="testserver")
    from django.db import connection
    from django.test import Client, override_settings
    from django.utils import timezone

    from accounts.models import Membership, Organization, Role, User
    from leadflow.core.tenancy import tenant_scope

    started = time.perf_counter()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    from accounts.permissions import Perm

    install_floor_urls(FLOOR_URLCONF, Perm.VIEW_LEADS)
    storages = source_static_storages()
    try:
        version = server_version()
        print(f"PostgreSQL {version}; load {os.getloadavg()[0]:.1f} (1 min average)", flush=True)
        now = timezone.now().replace(microsecond=0)

        def organization(slug: str) -> tuple[Organization, Membership]:
            org = Organization.objects.create(name=f"Bench {slug}", slug=slug)
            user = User(email=f"admin@{slug}.example", full_name="Admin")
            user.set_unusable_password()
            user.save()
            return org, Membership.objects.create(organization=org, user=user, role=Role.ADMIN)

        bystander, _ = organization("bench-bystander")
        org, admin = organization("bench-leads")
        with tenant_scope(bystander):
            load(bystander, leads=args.bystander, per_lead=args.activities_per_lead, now=now)
        client = Client()
        client.force_login(admin.user)
        with override_settings(ROOT_URLCONF=FLOOR_URLCONF, STORAGES=storages):
            with tenant_scope(org):
                load(org, leads=args.leads, per_lead=args.activities_per_lead, now=now)
            small = run_size(
                client, org, "small", repeat=args.repeat, explain_plans=False, profile=args.profile
            )
            large = None
            if args.large:
                with tenant_scope(org):
                    more = args.large - args.leads
                    load(org, leads=more, per_lead=args.activities_per_lead, now=now)
                large = run_size(
                    client,
                    org,
                    "large",
                    repeat=args.repeat,
                    explain_plans=args.explain,
                    profile=args.profile,
                )
        report(small, large)
        seconds = time.perf_counter() - started
        print(f"\n  whole bench: {seconds:.0f} s; load {os.getloadavg()[0]:.1f}")
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
