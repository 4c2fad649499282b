"""Benchmark: the "Possible duplicates" page at 10,000 and 1,000,000 leads on
PostgreSQL (or 10,000 on SQLite with --sqlite), against a floor page, and the
time to find the candidates of a batch of N new leads for several N.

    python scripts/with_services.py -- .venv/bin/python bench/duplicates.py [--large 0]
    PYTHONPATH=. .venv/bin/python bench/duplicates.py --sqlite

PostgreSQL: a throwaway database; one organization with an admin and --leads
leads generated inside PostgreSQL (bench/lead_list_data.py: varied names, 60% in
a company), where every 50th lead shares its phone with the next one (written as
E.164 and as a national number), so 1% of the leads are pairs; their blocking
keys are written set-based in SQL (a sample is checked against
leads.services.duplicates.lead_keys, which the app uses), then the pairs are
found and ranked by the app's own code (the self-join + rapidfuzz) for the leads
that share a key. SQLite: the same tenant at --leads, made in Python, and the
app's full rebuild (timed).

Timed, alternating, best of --repeat (median too), through the Django test
client as the admin: the page (open pairs, best first), its next page (keyset
cursor) and the floor (a bare @org_view page). Then batches of N new leads
(each the plus-tagged address of an existing lead) are inserted and their candidates
refreshed by duplicates_refresh — the work the post-ingest task does — timed per
N, to show time linear in the batch (per-lead cost flat) and independent of the
tenant's size. Goals: the page <= 300 ms and growth <= 2x from the small to the
large tenant. No assertions: the figures are for people to read.
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
    setup_django,
    source_static_storages,
    throwaway_database,
)

FLOOR_URLCONF = "bench_duplicates_urls"
GOAL_MS = 300
GOAL_GROWTH = 2.0
PAIR_EVERY = 50  # lead i and i+1 share a phone when i % PAIR_EVERY == 0
FIRST_NAMES = ["Ada", "Grace", "Alan", "Zoë", "Ángel", "Søren", "Mateo", "Amara", "Ravi", "Ken"]
SURNAMES = ["Park", "Lee", "Smith", "Garcia", "Müller", "Rossi", "Novak", "Sato", "Kim", "Silva"]


def load_avg() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def get(client, path: str) -> tuple[float, object]:
    started = time.perf_counter()
    response = client.get(path)
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"bench: GET {path} answered {response.status_code}")
    return seconds, response


# --- Seeding ----------------------------------------------------------------------


def seed_postgres(organization, *, leads: int, now) -> float:
    """Leads, paired phones and keys, set-based in SQL; pairs by the app's code."""
    from django.db import connection

    from bench import lead_list_data as data
    from bench.rescore import bulk_load, vacuum
    from leads.models import Lead

    started = time.perf_counter()
    first = Lead.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    bulk_load(
        lambda: data.grow(
            organization_id=organization.pk, leads=leads, activities_per_lead=0, now=now
        )
    )
    with connection.cursor() as cursor:
        # Lead i (i % 50 == 0) and i+1 share a number: one as E.164, one national.
        cursor.execute(
            """
            UPDATE leads_lead SET
              phone = '+4930' || lpad(((id - %(first)s - 1) / 2)::text, 7, '0'),
              country = 'DE'
            WHERE organization_id = %(org)s AND id > %(first)s
              AND (id - %(first)s - 1) %% %(every)s IN (0, 1)
            """,
            {"org": organization.pk, "first": first, "every": PAIR_EVERY},
        )
        insert_keys_sql(cursor, organization.pk, first)
    vacuum("leads_lead", "leads_duplicatekey")
    return time.perf_counter() - started


def insert_keys_sql(cursor, organization_id: int, after_id: int) -> None:
    """What lead_keys() gives for the generated leads (ASCII surnames, 'Company N'
    companies whose 'company' word is a legal suffix, a few accented first names),
    written with three INSERT … SELECT."""
    initial = (
        "CASE WHEN first_name LIKE 'Ł%%' THEN lower(substr(first_name, 2, 1))"
        " ELSE lower(translate(left(first_name, 1), 'ÁÉÍÓÚÀÈÌÒÙÂÊÎÔÛÄËÏÖÜÅØÆÇÑ',"
        " 'AEIOUAEIOUAEIOUAEIOUAOACN')) END"
    )
    selects = {
        "phone": "phone, phone <> ''",
        "email": "lower(email), email <> ''",
        "name": (
            f"lower(last_name) || '|' || {initial} || '|' || "
            "regexp_replace(lower(company_name), '^company ', ''),"
            " last_name <> '' AND company_name <> ''"
        ),
    }
    for kind, select in selects.items():
        value, condition = select.rsplit(",", 1)
        cursor.execute(
            f"""
            INSERT INTO leads_duplicatekey (organization_id, lead_id, kind, value)
            SELECT organization_id, id, %s, {value} FROM leads_lead
            WHERE organization_id = %s AND id > %s AND {condition}
            """,
            [kind, organization_id, after_id],
        )


def check_keys(organization, sample: int = 2000) -> int:
    """Leads (of a sample) whose SQL keys differ from the app's lead_keys()."""
    from leads.models import DuplicateKey, Lead
    from leads.services.duplicates import _lead_values, lead_keys

    ids = list(Lead.objects.order_by("?").values_list("pk", flat=True)[:sample])
    stored: dict[int, dict[str, str]] = {}
    for lead_id, kind, value in DuplicateKey.objects.filter(lead_id__in=ids).values_list(
        "lead_id", "kind", "value"
    ):
        stored.setdefault(lead_id, {})[kind] = value
    values = _lead_values(ids)
    return sum(1 for pk in ids if lead_keys(values[pk]) != stored.get(pk, {}))


def find_pairs(organization) -> tuple[float, int]:
    """The app's pair finding and ranking for every lead that shares a key."""
    from django.db import connection, transaction

    from leads.services.duplicates import _chunks, _lead_values, _pairs_refresh

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT a.lead_id FROM leads_duplicatekey a
            WHERE a.organization_id = %s AND EXISTS (
              SELECT 1 FROM leads_duplicatekey b WHERE b.organization_id = a.organization_id
              AND b.kind = a.kind AND b.value = a.value AND b.lead_id <> a.lead_id)
            ORDER BY 1
            """,
            [organization.pk],
        )
        ids = [row[0] for row in cursor.fetchall()]
    for chunk in _chunks(ids):
        with transaction.atomic():
            _pairs_refresh(organization.pk, _lead_values(chunk))
    return time.perf_counter() - started, len(ids)


def seed_sqlite(organization, *, leads: int) -> float:
    """The tenant made in Python (bulk_create), then the app's full rebuild."""
    from leads.models import Lead
    from leads.services.duplicates import duplicates_rebuild

    rows = []
    for i in range(leads):
        paired = i % PAIR_EVERY in (0, 1)
        number = f"{(i // 2):07d}"
        rows.append(
            Lead(
                organization=organization,
                email=f"lead{i}@firm{i % 500}.example",
                first_name=FIRST_NAMES[i % len(FIRST_NAMES)],
                last_name=SURNAMES[(i * 7) % len(SURNAMES)] + str(i % 997),
                company_name=f"Company {i // 10}" if i % 10 < 6 else "",
                phone=("+4930" + number if i % 2 == 0 else "030 " + number) if paired else "",
                country="DE",
            )
        )
    Lead.objects.bulk_create(rows, batch_size=2000)
    started = time.perf_counter()
    duplicates_rebuild(organization_id=organization.pk)
    return time.perf_counter() - started


# --- Measuring ----------------------------------------------------------------------


def run_page(client, organization, label: str, *, repeat: int) -> dict:
    from django.urls import reverse

    from leadflow.core.tenancy import tenant_scope
    from leads.models import CandidateStatus, DuplicateCandidate, Lead
    from leads.selectors import duplicate_candidates

    with tenant_scope(organization):
        leads = Lead.objects.count()
        pairs = DuplicateCandidate.objects.filter(status=CandidateStatus.OPEN).count()
        first = duplicate_candidates()
    page = reverse("leads:duplicate_list", kwargs={"org_slug": organization.slug})
    urls = {
        "page": page,
        "next": f"{page}?after={first.next_cursor}",
        "floor": f"/o/{organization.slug}/bench/floor/",
    }
    print(f"\n== {label}: {leads:,} leads, {pairs:,} open pairs ({load_avg()})", flush=True)
    for _ in range(3):
        for path in urls.values():
            get(client, path)
    runs: dict[str, list[float]] = {name: [] for name in urls}
    for _ in range(repeat):
        for name, path in urls.items():
            runs[name].append(get(client, path)[0])
    result = {
        "leads": leads,
        "pairs": pairs,
        "rows": len(first.candidates),
        "pages": {n: (min(r), statistics.median(r)) for n, r in runs.items()},
    }
    for name, (best, median) in result["pages"].items():
        print(f"  {name:<6} {best * 1000:8.2f} ms (median {median * 1000:7.2f})", flush=True)
    return result


def run_batches(organization, sizes: list[int], label: str) -> list[tuple[int, float]]:
    """Insert N new leads, each the plus-tagged address of a different existing
    lead (one candidate each), then time duplicates_refresh over them, as the
    post-ingest task runs it."""
    from leads.models import Lead
    from leads.services.duplicates import duplicates_refresh

    results = []
    existing = Lead.objects.exclude(email="").order_by("pk").values_list("email", flat=True)
    offset = 0
    for n in sizes:
        twins = list(existing[offset : offset + n])
        offset += n
        stamp = time.time_ns()  # a tag no earlier batch used
        new = Lead.objects.bulk_create(
            [
                Lead(
                    organization=organization,
                    email=email.replace("@", f"+b{stamp}@", 1),
                    first_name="Nia",
                    last_name=f"Batch{i}",
                )
                for i, email in enumerate(twins)
            ],
            batch_size=2000,
        )
        ids = [lead.pk for lead in new]
        started = time.perf_counter()
        found = duplicates_refresh(organization_id=organization.pk, lead_ids=ids)
        seconds = time.perf_counter() - started
        results.append((n, seconds))
        print(
            f"  {label}: batch of {n:>6,} new leads: {seconds * 1000:9.1f} ms"
            f" ({seconds / n * 1e6:7.1f} µs a lead), {found:,} pairs; {load_avg()}",
            flush=True,
        )
    return results


def report(sizes: list[dict], batches: dict[str, list[tuple[int, float]]]) -> None:
    print("\n== Results: best of the runs (median); the page against the floor")
    for r in sizes:
        floor = r["pages"]["floor"][0]
        for name, (best, median) in r["pages"].items():
            verdict = ""
            if name != "floor":
                verdict = f"  goal <= {GOAL_MS} ms: {'OK' if best * 1000 <= GOAL_MS else 'MISSED'}"
            print(
                f"  {r['leads']:>10,} leads {r['pairs']:>8,} pairs  {name:<6}"
                f" {best * 1000:8.2f} ms ({median * 1000:7.2f})  {best / floor:5.1f}x floor"
                f"{verdict}"
            )
    if len(sizes) == 2:
        small, large = sizes
        for name in ("page", "next"):
            growth = large["pages"][name][0] / small["pages"][name][0]
            verdict = "OK" if growth <= GOAL_GROWTH else "MISSED"
            print(
                f"  growth {name} {large['leads']:,} vs {small['leads']:,} leads:"
                f" {growth:.2f}x (goal <= {GOAL_GROWTH}x) {verdict}"
            )
    for label, rows in batches.items():
        (n0, s0), (n1, s1) = rows[0], rows[-1]
        print(
            f"  {label}: batch {n1:,} vs {n0:,} leads: {s1 / s0:.1f}x the time for"
            f" {n1 / n0:.0f}x the leads (linear: per lead {s0 / n0 * 1e6:.0f} →"
            f" {s1 / n1 * 1e6:.0f} µs)"
        )


def main() -> int:
    parser = bench_parser(__doc__, leads=10_000)
    parser.add_argument("--large", type=int, default=1_000_000, help="large tenant (0: skip)")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per page and size")
    parser.add_argument("--sqlite", action="store_true", help="the quick-start database")
    parser.add_argument(
        "--batches", default="100,1000,5000", help="batch sizes of new leads (comma-separated)"
    )
    args = parser.parse_args()
    batch_sizes = [int(n) for n in args.batches.split(",")]
    if args.sqlite:
        os.environ.pop("DATABASE_URL", None)
        args.large = 0
    elif not postgres_url("duplicates.py"):
        return 2
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    setup_django(production=True, hosts="testserver")
    from django.db import connection
    from django.test import Client, override_settings
    from django.utils import timezone

    from accounts.models import Membership, Organization, Role, User
    from accounts.permissions import Perm
    from leadflow.core.tenancy import tenant_scope

    started = time.perf_counter()
    install_floor_urls(FLOOR_URLCONF, Perm.REVIEW_LEADS)
    with throwaway_database(require_postgres=not args.sqlite):
        print(f"{connection.vendor} {connection.Database.__name__}; {load_avg()}", flush=True)
        now = timezone.now().replace(microsecond=0)
        org = Organization.objects.create(name="Bench dupes", slug="bench-dupes")
        user = User(email="admin@bench-dupes.example", full_name="Admin")
        user.set_unusable_password()
        user.save()
        Membership.objects.create(organization=org, user=user, role=Role.ADMIN)
        client = Client()
        client.force_login(user)
        sizes, batches = [], {}
        with override_settings(ROOT_URLCONF=FLOOR_URLCONF, STORAGES=source_static_storages()):
            targets = [args.leads] + ([args.large] if args.large else [])
            have = 0
            for target in targets:
                with tenant_scope(org):
                    if args.sqlite:
                        seconds = seed_sqlite(org, leads=target - have)
                        print(f"  full rebuild (app code) at {target:,} leads: {seconds:.1f} s")
                    else:
                        seconds = seed_postgres(org, leads=target - have, now=now)
                        print(f"  +{target - have:,} leads and keys in {seconds:.1f} s")
                        differ = check_keys(org)
                        print(f"  keys of 2,000 sampled leads vs lead_keys(): {differ} differ")
                        seconds, n = find_pairs(org)
                        print(f"  pairs of {n:,} leads found and ranked in {seconds:.1f} s")
                have = target
                sizes.append(run_page(client, org, f"{target:,} leads", repeat=args.repeat))
                with tenant_scope(org):
                    label = f"at {target:,} leads"
                    batches[label] = run_batches(org, batch_sizes, label)
        report(sizes, batches)
        print(f"\n  whole bench: {time.perf_counter() - started:.0f} s; {load_avg()}")
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
