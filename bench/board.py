"""Benchmark: the opportunity board at two tenant sizes, as the admin (every deal)
and as a rep (their own), against a floor of a bare org page through the same
middleware.

    python scripts/with_services.py -- .venv/bin/python bench/board.py [--large N]

Needs PostgreSQL. The tenant is bench/rep_queue.py's (bench/rep_queue_data.py:
leads in every stage, an opportunity for every deal-stage lead, generated inside
PostgreSQL, no activities); its open deals are spread over the default open
stages, a third left without a stage (the board's fallback column). Printed per
size: deals, page and floor ms (best of --repeat, median in brackets), page/floor,
the page's query count (must be equal at both sizes) and its statements' times;
then growth large vs small. No timed assertions: the figures are for people.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

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

FLOOR_URLCONF = "bench_board_urls"


def spread_over_stages(organization) -> None:
    """Open deals over the open stages (a third stays unset), closed ones in theirs."""
    from django.db import connection

    from leadflow.core.tenancy import tenant_scope
    from pipeline.services import deal_stages_install

    with tenant_scope(organization):
        stages = deal_stages_install(organization_id=organization.pk)
    open_ids = [s.pk for s in stages if s.kind == "open"]
    closed = {s.kind: s.pk for s in reversed(stages) if s.kind != "open"}
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE pipeline_opportunity SET stage_id = (%s::int[])[1 + id %% 3]"
            " WHERE organization_id = %s AND status = 'open' AND id %% 4 <> 0",
            [open_ids, organization.pk],
        )
        for kind, pk in closed.items():
            cursor.execute(
                "UPDATE pipeline_opportunity SET stage_id = %s"
                " WHERE organization_id = %s AND status = %s",
                [pk, organization.pk, kind],
            )
        cursor.execute("ANALYZE pipeline_opportunity")


def measure(clients: dict, path: str, floor: str, repeat: int) -> dict:
    from bench.rep_queue import get

    out = {}
    for who, client in clients.items():
        for _ in range(3):
            get(client, path), get(client, floor)
        pages, floors = [], []
        for _ in range(repeat):
            seconds, statements, body = get(client, path)
            pages.append(seconds)
            floors.append(get(client, floor)[0])
        out[who] = {
            "page": min(pages),
            "page_median": statistics.median(pages),
            "floor": min(floors),
            "queries": len(statements),
            "statements": statements,
            "cards": body.count('data-testid="deal-card"'),
        }
    return out


def main() -> int:
    parser = bench_parser(__doc__, leads=10_000)
    parser.add_argument("--large", type=int, default=200_000, help="large tenant's leads")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per size")
    args = parser.parse_args()
    if not postgres_url("board.py"):
        return 2
    setup_django(production=True, hosts="testserver")
    from django.db import connection
    from django.test import Client, override_settings
    from django.urls import reverse
    from django.utils import timezone

    from accounts.permissions import Perm
    from bench import rep_queue_data as data
    from bench.rep_queue import load
    from leadflow.core.tenancy import tenant_scope
    from pipeline.models import Opportunity

    started = time.perf_counter()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    install_floor_urls(FLOOR_URLCONF, Perm.VIEW_PIPELINE)
    try:
        print(f"PostgreSQL {server_version()}; load {os.getloadavg()[0]:.1f}")
        now = timezone.now().replace(microsecond=0)
        team = data.make_sales_team(slug="bench-board", reps=8, teams=2)
        clients = {"admin": Client(), "rep": Client()}
        clients["admin"].force_login(team.admin.user)
        clients["rep"].force_login(team.rep.user)
        slug = team.organization.slug
        path, floor = (
            reverse("pipeline:board", kwargs={"org_slug": slug}),
            f"/o/{slug}/bench/floor/",
        )
        results = []
        with override_settings(ROOT_URLCONF=FLOOR_URLCONF, STORAGES=source_static_storages()):
            for label, leads in (("small", args.leads), ("large", args.large - args.leads)):
                if leads <= 0:
                    continue
                load(team, leads=leads, per_lead=0, now=now)
                spread_over_stages(team.organization)
                with tenant_scope(team.organization):
                    deals = Opportunity.objects.count()
                figures = measure(clients, path, floor, args.repeat)
                results.append((label, deals, figures))
                print(f"\n== {label}: {deals:,} deals")
                for who, r in figures.items():
                    print(
                        f"  {who}: page {r['page'] * 1000:.2f} ms ({r['page_median'] * 1000:.2f}),"
                        f" floor {r['floor'] * 1000:.2f} ms, {r['page'] / r['floor']:.1f}x,"
                        f" {r['queries']} queries, {r['cards']} cards"
                    )
                    for seconds, sql in r["statements"]:
                        print(f"      {seconds * 1000:7.2f} ms  {sql[:90]}")
        if len(results) == 2:
            (_, small_deals, small), (_, large_deals, large) = results
            for who in clients:
                growth = large[who]["page"] / small[who]["page"]
                same = large[who]["queries"] == small[who]["queries"]
                print(
                    f"  {who}: growth {large_deals:,} vs {small_deals:,} deals: page"
                    f" {growth:.2f}x; queries {'the same' if same else 'DIFFER'}"
                )
        print(f"load {os.getloadavg()[0]:.1f}; {time.perf_counter() - started:.0f} s in all")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
