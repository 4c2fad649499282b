"""Benchmark: learning a suggested rule set from outcomes on PostgreSQL.

    python scripts/with_services.py -- .venv/bin/python bench/learn.py [--sizes 100000,1000000]

Builds one organization in a throwaway database with the generated leads of
bench/rescore_data.py (title, country, company size, a custom "visits"
attribute, about 5 activities each), spreads their creation over 400 days and
gives each a won/lost outcome that depends on title, country and activity, so
there is something to learn, and a stage history (SAL 3 days after arrival,
the outcome 27 days later), so activity counts are cut at SAL as in real use.
Then it times `scoring.learning.learn` (streamed features, holdout fit, final
fit, calibration) and reports its peak resident memory (ru_maxrss of this
process, which holds nothing else large).

Goals (issue 13): 1M leads in <= 5 minutes on 2 cores and <= 2 GiB peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import setup_django, throwaway_database

GOAL_SECONDS = 300
GOAL_RSS_GIB = 2.0


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024  # KiB -> GiB


def outcomes(org_id: int, now) -> None:
    """Creation dates over 400 days; won with a probability that follows title,
    country and page views (hash-driven, deterministic)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE leads_lead SET created_at = %s - make_interval(days => (abs(hashint8(id * 31)) %% 400)::int)"  # noqa: E501
            " WHERE organization_id = %s",
            [now, org_id],
        )
        cursor.execute(
            "WITH views AS (SELECT lead_id, count(*) AS n FROM leads_activity"
            " WHERE organization_id = %s AND kind = 'page_view' GROUP BY lead_id)"
            " UPDATE leads_lead l SET stage = CASE WHEN (abs(hashint8(l.id * 17)) %% 100) <"
            " 10 + CASE WHEN l.title ILIKE '%%vp%%' OR l.title ILIKE 'head%%' THEN 30 ELSE 0 END"
            " + CASE WHEN l.country = 'DE' THEN 15 ELSE 0 END + 8 * COALESCE(v.n, 0)"
            " THEN 'won' ELSE 'lost' END"
            " FROM leads_lead l2 LEFT JOIN views v ON v.lead_id = l2.id"
            " WHERE l.id = l2.id AND l.organization_id = %s",
            [org_id, org_id],
        )
        # Stage history: sales accepted each lead 3 days after it arrived and
        # closed it 30 days after; learning counts only the activities before SAL.
        cursor.execute("DELETE FROM pipeline_stagetransition WHERE organization_id = %s", [org_id])
        cursor.execute(
            "INSERT INTO pipeline_stagetransition (organization_id, lead_id, from_stage, to_stage,"
            " occurred_at, rule, reason_code, reason)"
            " SELECT organization_id, id, m.from_stage, COALESCE(m.to_stage, stage),"
            " created_at + make_interval(days => m.days), 'bench', '', ''"
            " FROM leads_lead, (VALUES ('mql', 'sal', 3), ('sal', NULL, 30))"
            " AS m(from_stage, to_stage, days) WHERE organization_id = %s",
            [org_id],
        )
        cursor.execute("VACUUM ANALYZE leads_lead")
        cursor.execute("VACUUM ANALYZE pipeline_stagetransition")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    args = parser.parse_args()
    setup_django()
    from django.utils import timezone

    from accounts.models import Organization
    from bench.rescore import grow
    from leadflow.core.tenancy import tenant_scope
    from scoring import learning

    with throwaway_database():
        org = Organization.objects.create(name="Learner", slug="learner")
        now = timezone.now()
        have = 0
        for size in [int(s) for s in args.sizes.split(",")]:
            with tenant_scope(org):
                grow(org.pk, leads=size - have, activities=5 * (size - have), now=now)
                have = size
                outcomes(org.pk, now)
                started = time.perf_counter()
                result = learning.learn(excluded=set(), now=now + timedelta(seconds=1))
                seconds = time.perf_counter() - started
            h = result.metrics["holdout"]
            print(
                f"{size:>9,} leads: learned in {seconds:7.1f} s, peak RSS {peak_rss_gib():.2f} GiB;"
                f" {len(result.rules)} rules, holdout AUC {h['auc']:.3f} ({h['split']},"
                f" {h['leads']:,} leads)",
                flush=True,
            )
            if size >= 1_000_000:
                ok = seconds <= GOAL_SECONDS and peak_rss_gib() <= GOAL_RSS_GIB
                print(
                    f"  goal (<= {GOAL_SECONDS} s, <= {GOAL_RSS_GIB} GiB):",
                    "met" if ok else "MISSED",
                )


if __name__ == "__main__":
    main()
