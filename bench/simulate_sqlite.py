"""Benchmark: the rule simulation on SQLite (the quick-start database) with
120 rules on 9,237 leads, against the same SQL run by hand.

    PYTHONPATH=. .venv/bin/python bench/simulate_sqlite.py [--repeat 3]

Builds one organization in a throwaway SQLite database: 9,237 leads (the size
of the X Education data) with categorical and numeric custom attributes and 5
activities each, and 120 active rules (fit rules on every category value and
numeric thresholds, engagement rules over kinds, windows and counts, in capped
groups). Then it times `scoring.simulation.simulate_rule` for a candidate rule
(configuration loading, SQL generation, the one comparison statement) and
runs that same statement, captured, straight on the sqlite3 connection: the
floor. Prints both and the ratio.

Goal (issue 13): the simulation within 2x the hand-run SQL. Before the
engine's `LIMIT -1 OFFSET 0` fence, SQLite flattened the nested SELECTs and took
110-217 s per preview.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import setup_django, throwaway_database

LEADS = 9237
RULES = 120
GOAL_RATIO = 2.0
ORIGINS = ["Landing Page", "API", "Lead Add Form", "Lead Import", "Quick Add"]
OCCUPATIONS = ["Unemployed", "Working Professional", "Student", "Other", "Housewife", ""]
SPECIALIZATIONS = [f"Spec {n}" for n in range(12)]
CITIES = [f"City {n}" for n in range(8)]
KINDS = ["page_view", "email_open", "email_click", "form_submit", "content_download"]


def build(org) -> None:
    from django.utils import timezone

    from leads.models import Activity, Lead
    from scoring.models import RuleKind, ScoreGroup, ScoringRule, ScoringSettings

    now = timezone.now()
    leads = [
        Lead(
            organization=org,
            email=f"l{i}@example.org",
            title="VP Sales" if i % 7 == 0 else "",
            company_size=(i * 37) % 900,
            custom={
                "origin": ORIGINS[i % 5],
                "occupation": OCCUPATIONS[(i * 7) % 6],
                "specialization": SPECIALIZATIONS[(i * 5) % 12],
                "city": CITIES[(i * 3) % 8],
                "visits": (i * 13) % 41,
                "time": (i * 97) % 2000,
            },
        )
        for i in range(LEADS)
    ]
    Lead.objects.bulk_create(leads, batch_size=2000)
    Activity.objects.bulk_create(
        (
            Activity(
                organization=org,
                lead=lead,
                kind=KINDS[(lead.pk + k) % 5],
                occurred_at=now - timedelta(days=(lead.pk * (k + 3)) % 120),
            )
            for lead in leads
            for k in range(5)
        ),
        batch_size=5000,
    )
    ScoringSettings.objects.get_or_create(organization=org)
    groups = {
        name: ScoreGroup.objects.create(organization=org, name=name, cap=cap)
        for name, cap in (("Profile", 60), ("Visits", 25), ("Time", 25), ("Engagement", 40))
    }
    specs = []
    for key, values in (
        ("origin", ORIGINS),
        ("occupation", OCCUPATIONS[:-1]),
        ("specialization", SPECIALIZATIONS),
        ("city", CITIES),
    ):
        specs += [
            dict(
                kind=RuleKind.FIT,
                field=f"custom.{key}",
                operator="eq",
                value=v,
                points=(len(v) % 9) - 3,
                group=groups["Profile"],
            )
            for v in values
        ]
    specs += [
        dict(
            kind=RuleKind.FIT,
            field="custom.visits",
            operator="gte",
            value=2 * k + 1,
            points=1 + k % 3,
            group=groups["Visits"],
        )
        for k in range(20)
    ]
    specs += [
        dict(
            kind=RuleKind.FIT,
            field="custom.time",
            operator="gte",
            value=100 * k + 50,
            points=1 + k % 4,
            group=groups["Time"],
        )
        for k in range(20)
    ]
    specs += [
        dict(kind=RuleKind.FIT, field="title", operator="contains", value="vp", points=10),
        dict(kind=RuleKind.FIT, field="company_size", operator="gte", value=200, points=5),
        dict(kind=RuleKind.FIT, field="custom.occupation", operator="empty", points=-5),
        dict(
            kind=RuleKind.FIT,
            field="custom.specialization",
            operator="in",
            value=SPECIALIZATIONS[:4],
            points=2,
        ),
        dict(
            kind=RuleKind.ENGAGEMENT,
            activity_kinds=["page_view"],
            per_occurrence=True,
            max_points=10,
            points=1,
        ),
    ]
    for kind in KINDS:
        for window in (7, 30, 90):
            for count in (1, 2, 3):
                specs.append(
                    dict(
                        kind=RuleKind.ENGAGEMENT,
                        activity_kinds=[kind],
                        window_days=window,
                        min_count=count,
                        points=count + window // 30,
                        group=groups["Engagement"],
                    )
                )
    specs = specs[:RULES]
    assert len(specs) == RULES, len(specs)
    ScoringRule.objects.bulk_create(
        ScoringRule(organization=org, name=f"Rule {n}", position=n, **spec)
        for n, spec in enumerate(specs)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.pop("DATABASE_URL", None)  # SQLite: the quick-start database
    setup_django()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Organization
    from leadflow.core.tenancy import tenant_scope
    from scoring.models import RuleKind, ScoringRule
    from scoring.simulation import simulate_rule

    with throwaway_database(require_postgres=False):
        assert connection.vendor == "sqlite"
        org = Organization.objects.create(name="Bench", slug="bench")
        with tenant_scope(org):
            started = time.perf_counter()
            build(org)
            print(
                f"built {LEADS:,} leads, {5 * LEADS:,} activities, {RULES} rules "
                f"in {time.perf_counter() - started:.1f} s"
            )
            candidate = ScoringRule(
                organization=org,
                kind=RuleKind.FIT,
                name="Candidate",
                field="custom.city",
                operator="in",
                value=CITIES[:3],
                points=7,
            )
            simulate_rule(organization_id=org.pk, candidate=candidate)  # warm caches
            sims, hands = [], []
            for _ in range(args.repeat):
                with CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    result = simulate_rule(organization_id=org.pk, candidate=candidate)
                    sims.append(time.perf_counter() - started)
                statement = queries.captured_queries[-1]["sql"]  # the comparison
                raw = connection.connection  # the sqlite3 connection itself
                started = time.perf_counter()
                row = raw.execute(statement).fetchone()
                hands.append(time.perf_counter() - started)
                # The same statement: the same totals and matches as the simulation read.
                assert (row[0], row[6]) == (result.before.total, result.matches), row[:7]
    sim, hand = min(sims), min(hands)
    ratio = sim / hand
    print(f"simulation: {sim:.3f} s (matches {result.matches:,}, changed {result.changed:,})")
    print(f"same SQL by hand: {hand:.3f} s")
    print(
        f"ratio: {ratio:.2f}x (goal <= {GOAL_RATIO:.0f}x)",
        "OK" if ratio <= GOAL_RATIO else "MISSED",
    )


if __name__ == "__main__":
    main()
