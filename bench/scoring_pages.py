"""Benchmark: the scoring-health report and the rule list with learned rules on
the 9,237 X Education leads, against the same SQL run straight on the driver.

    python scripts/with_services.py -- .venv/bin/python bench/scoring_pages.py   # PostgreSQL
    PYTHONPATH=. .venv/bin/python bench/scoring_pages.py --sqlite                # SQLite

Builds a throwaway database: one organization imports the public X Education
dataset (../shared/data/x-education-leads.csv beside the repository) with its
`Converted` outcomes through the importer, marks the columns sales fills in
after qualifying as post-qualification (as tests/reports/test_xeducation_scoring.py
does), learns a rule set from the outcomes and applies it (a rescore), then
tops the learned rules up with fit rules on the imported custom attributes to
`--rules` active rules (120 by default: a realistic rule set). A bystander
organization holds a copy of some of the leads. PostgreSQL is ANALYZEd, as
autovacuum would after the load (`--no-analyze`: measured before it is).

Then, best of `--repeat`, through the whole Django stack (test client, an
admin logged in):
- the scoring-health report as it opens (this period and the previous one);
- the rule list;
and the floor of each: the statements the page ran, captured, executed again
straight on the database driver and fetched (the database work alone). Prints
both, the number of statements and the ratio. Then a reference for the
health page: the scoring engine's own SELECT of new scores over the same leads
(every rule evaluated once per lead, no writes), and the page's ratio to it.

Issue 15 measured, before the one-pass rule table: health 7.6 s on PostgreSQL
and 2.2 s on SQLite, the rule list 4.1 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from bench.common import setup_django, throwaway_database  # noqa: E402


def import_csv(org, user, data: bytes, name: str) -> int:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from leadflow.core.tenancy import tenant_scope
    from leads.models import ImportJob
    from leads.services import imports

    with tenant_scope(org):
        job = imports.import_job_create(
            organization=org, user=user, upload=SimpleUploadedFile(name, data)
        )
        imports.import_job_start(
            job=job,
            mapping={**job.mapping, "Converted": "outcome"},
            campaign=None,
            consent_basis="none",
        )  # runs eagerly (CELERY_TASK_ALWAYS_EAGER) as it commits
        return ImportJob.objects.get(pk=job.pk).created_count


def top_up_rules(org, wanted: int) -> None:
    """Fit rules on custom attribute values the leads have, until `wanted` are active."""
    from django.db.models import Count

    from leads.models import Lead
    from scoring.models import RuleKind, ScoringRule

    have = ScoringRule.objects.filter(is_active=True).count()
    taken = {
        (r.field, r.operator, str(r.value)) for r in ScoringRule.objects.filter(kind=RuleKind.FIT)
    }
    keys = [
        "lead_origin", "specialization", "what_is_your_current_occupation",
        "how_did_you_hear_about_x_education", "what_matters_most_to_you_in_choosing_a_course",
    ]  # fmt: skip
    specs = []
    for key in keys:
        rows = (
            Lead.objects.exclude(**{f"custom__{key}": None})
            .values(f"custom__{key}")
            .annotate(n=Count("pk"))
            .order_by("-n")[:15]
        )
        for row in rows:
            value = row[f"custom__{key}"]
            if isinstance(value, str) and value and (f"custom.{key}", "eq", value) not in taken:
                specs.append((f"custom.{key}", value))
    fit = [
        dict(kind=RuleKind.FIT, field=field, operator="eq", value=value) for field, value in specs
    ]
    numeric = [
        dict(kind=RuleKind.FIT, field=f"custom.{key}", operator="gte", value=step * k)
        for k in range(1, 11)
        for key, step in (("total_visits", 2), ("total_time_spent_on_website", 150))
    ]
    # Engagement rules (the import activity every lead has), with windows and counts.
    engagement = [
        dict(kind=RuleKind.ENGAGEMENT, activity_kinds=["import"], window_days=w, min_count=c)
        for w in (7, 30, None)
        for c in (1, 2)
    ]
    chosen = (engagement + numeric + fit)[: max(wanted - have, 0)]
    ScoringRule.objects.bulk_create(
        ScoringRule(
            organization=org, name=f"Bench rule {n}", points=(n % 7) - 3, position=1000 + n, **spec
        )
        for n, spec in enumerate(chosen)
    )


def build(args):
    from django.db import connection

    from accounts.models import Membership, Organization, User
    from leadflow.core.tenancy import tenant_scope
    from scoring import engine, services, versions
    from scoring.models import ScoringRule

    # The dataset, and the columns sales fills in after qualifying (kept out of
    # learning), as the X Education test has them.
    from tests.reports.test_xeducation_scoring import DATASET, POST_QUALIFICATION

    if not DATASET.exists():
        sys.exit(f"bench: {DATASET.name} not found in a shared/data folder beside the repository")
    with DATASET.open(encoding="utf-8", newline="") as fh:
        data = fh.read().encode()
    org = Organization.objects.create(name="X Education", slug="xed")
    other = Organization.objects.create(name="Bystander", slug="bystander")
    user = User.objects.create_user(email="admin@xed.example", password="bench-pass-1")
    seat = Membership.objects.create(organization=org, user=user, role="admin")
    other_user = User.objects.create_user(email="admin@by.example", password="bench-pass-1")
    started = time.perf_counter()
    with tenant_scope(org):
        services.post_qualification_mark(
            organization_id=org.pk, fields=POST_QUALIFICATION, actor=seat
        )
    created = import_csv(org, user, data, "x.csv")
    lines = data.decode().splitlines(keepends=True)
    import_csv(other, other_user, "".join(lines[:2001]).encode(), "b.csv")
    with tenant_scope(org):
        draft = versions.version_learn(organization_id=org.pk, actor=seat)
        versions.version_apply(version=draft, actor=seat)
        learned = ScoringRule.objects.filter(is_active=True).count()
        top_up_rules(org, args.rules)
        engine.rescore(organization_id=org.pk)
        active = ScoringRule.objects.filter(is_active=True).count()
    if connection.vendor == "postgresql" and not args.no_analyze:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(
        f"built on {connection.vendor}: {created:,} leads with outcomes, {learned} learned "
        f"rules, {active} active rules in {time.perf_counter() - started:.0f} s"
    )
    return org, user


def time_page(client, url: str, repeat: int, verbose: bool) -> tuple[float, float, int]:
    """Best page time, best time of its statements run straight on the driver,
    and the number of statements."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm caches
    pages, floors, count = [], [], 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            pages.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
        statements = [q["sql"] for q in queries.captured_queries]
        count = len(statements)
        raw = connection.connection
        each = []
        for sql in statements:
            # The captured text has its parameters inlined, as the driver got them.
            if sql.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT")):
                continue
            started = time.perf_counter()
            cursor = raw.cursor()
            cursor.execute(sql)
            if cursor.description:
                cursor.fetchall()
            cursor.close()
            each.append((time.perf_counter() - started, sql))
        floors.append(sum(t for t, _ in each))
    if verbose:
        for seconds, sql in sorted(each, reverse=True)[:3]:
            print(f"    {seconds:.3f} s  {sql[:150]}")
    return min(pages), min(floors), count


def engine_pass(org, repeat: int) -> float:
    """Best time of the scoring engine's own SELECT of new scores for the same
    leads (no writes): every rule evaluated once per lead, the least work a
    per-rule figure needs."""
    from django.db import connection
    from django.utils import timezone

    from leadflow.core.tenancy import tenant_scope
    from scoring import engine
    from scoring.selectors import live_leads

    with tenant_scope(org):
        config = engine.load_config(organization_id=org.pk)
        sql, params = engine.scores_sql(config, live_leads(), timezone.now())
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.fetchall()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", action="store_true", help="the quick-start database")
    parser.add_argument("--rules", type=int, default=120)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--verbose", action="store_true", help="the slowest statements")
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="PostgreSQL without statistics (before autovacuum)",
    )
    args = parser.parse_args()
    if args.sqlite:
        os.environ.pop("DATABASE_URL", None)
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    setup_django()
    from django.test import Client
    from django.urls import reverse

    with throwaway_database(require_postgres=not args.sqlite):
        org, user = build(args)
        client = Client()
        client.force_login(user)
        pages = (("scoring health", "reports:scoring"), ("rule list", "scoring:rule_list"))
        page_times = {}
        for label, name in pages:
            url = reverse(name, kwargs={"org_slug": org.slug})
            page, floor, count = time_page(client, url, args.repeat, args.verbose)
            page_times[label] = page
            print(
                f"{label}: {page:.3f} s, {count} statements; the same SQL on the driver "
                f"{floor:.3f} s; ratio {page / floor:.2f}x"
            )
        rescore = engine_pass(org, args.repeat)
        print(
            f"reference: the engine's rescore SELECT (every rule once per lead) {rescore:.3f} s;"
            f" scoring health / that: {page_times['scoring health'] / rescore:.2f}x"
        )
    print("machine load (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
