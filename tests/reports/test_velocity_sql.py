"""The velocity figures computed in SQL (medians, percentiles, bands and SLA counts
in the database) equal the ones the report computed in Python before: the old
selectors are kept below as the oracle and run on the same rows.

Runs on SQLite (the fast suite) and on PostgreSQL (`make test`), whose percentile
code paths differ. The generated history has what the figures are sensitive to:
stays and assignments on the period's first and last instants, microseconds, ties
in time, speeds exactly on the band edges, touches before the assignment, SLA
reassignments, merged leads and a second tenant; and small cases by hand (nothing,
one value, even counts)."""

import datetime as dt
import random
from collections import defaultdict

import pytest
from django.db.models import F, OuterRef, Subquery, Window
from django.db.models.functions import Coalesce
from django.db.models.functions import Lead as NextValue

from accounts.models import Membership
from leadflow.core.tenancy import tenant_scope
from leads.models import Channel, Lead, LeadStage
from pipeline.models import Assignment, AssignmentMethod, StageTransition, Team
from reports.formatting import median, percentile, rate
from reports.period import parse_report_query
from reports.selectors.velocity import BANDS, STAY_STAGES, speed_to_lead, time_in_stage
from tests import factories as f

UTC = dt.UTC
START, END = dt.datetime(2026, 3, 1, tzinfo=UTC), dt.datetime(2026, 4, 1, tzinfo=UTC)
STAGES = [*STAY_STAGES, LeadStage.WON, LeadStage.LOST]


# -- the oracle: the selectors as they were, figures computed in Python ---------------


def old_time_in_stage(query):
    rows = (
        StageTransition.objects.filter(query.lead_q("lead__"), occurred_at__gte=query.start_at)
        .annotate(
            left_at=Window(
                NextValue("occurred_at"),
                partition_by=[F("lead_id")],
                order_by=[F("occurred_at").asc(), F("pk").asc()],
            )
        )
        .order_by()
        .values_list("to_stage", "occurred_at", "left_at")
    )
    stays: dict[str, list[float]] = defaultdict(list)
    still: dict[str, int] = defaultdict(int)
    for stage, entered, left in rows:
        if entered >= query.end_at:
            continue
        if left is None:
            still[stage] += 1
        else:
            stays[stage].append((left - entered).total_seconds())
    labels = dict(LeadStage.choices)
    return [
        {
            "stage": s.value,
            "label": labels[s],
            "stays": len(stays[s]),
            "median": median(stays[s]),
            "p90": percentile(stays[s], 90),
            "open": still[s],
        }
        for s in STAY_STAGES
    ]


def old_speed_to_lead(query):
    handoff = (
        StageTransition.objects.filter(
            lead_id=OuterRef("lead_id"),
            to_stage=LeadStage.MQL,
            occurred_at__lte=OuterRef("assigned_at"),
        )
        .order_by("-occurred_at", "-pk")
        .values("occurred_at")[:1]
    )
    rows = list(
        Assignment.objects.filter(
            query.lead_q("lead__"),
            assigned_at__gte=query.start_at,
            assigned_at__lt=query.end_at,
        )
        .annotate(handoff_at=Coalesce(Subquery(handoff), F("lead__created_at")))
        .order_by()
        .values_list(
            "handoff_at",
            "assigned_at",
            "first_touched_at",
            "breached_at",
            "membership_id",
            "team_id",
            "method",
        )
    )
    system, rep, total = [], [], []
    bands = [0] * len(BANDS)
    untouched = 0
    per_rep: dict = defaultdict(lambda: {"assigned": 0, "met": 0, "breached": 0, "pending": 0})
    per_team: dict = defaultdict(lambda: {"assigned": 0, "met": 0, "breached": 0, "pending": 0})
    for handoff_at, assigned_at, touched_at, breached_at, rep_id, team_id, method in rows:
        outcome = "breached" if breached_at else ("met" if touched_at else "pending")
        for bucket in (per_rep[rep_id], per_team[team_id]):
            bucket["assigned"] += 1
            bucket[outcome] += 1
        if method == AssignmentMethod.SLA_REASSIGN:
            continue
        system.append(max(0.0, (assigned_at - handoff_at).total_seconds()))
        if touched_at is None:
            untouched += 1
            continue
        rep.append(max(0.0, (touched_at - assigned_at).total_seconds()))
        speed = max(0.0, (touched_at - handoff_at).total_seconds())
        total.append(speed)
        for i, (_, low, high) in enumerate(BANDS):
            if speed >= low and (high is None or speed < high):
                bands[i] += 1
                break

    def summary(values):
        return {"median": median(values), "p95": percentile(values, 95), "count": len(values)}

    rep_ids = [pk for pk in per_rep if pk]
    team_ids = [pk for pk in per_team if pk]
    names = {
        m.pk: m.user.display_name
        for m in Membership.objects.filter(pk__in=rep_ids).select_related("user")
    }
    teams = dict(Team.objects.filter(pk__in=team_ids).values_list("pk", "name"))

    def compliance(groups, labels, fallback):
        out = [
            {
                "label": labels.get(key, fallback),
                **c,
                "compliance": rate(c["met"], c["met"] + c["breached"]),
            }
            for key, c in groups.items()
        ]
        return sorted(
            out, key=lambda r: (r["compliance"] is None, r["compliance"] or 0, r["label"])
        )

    touched = len(total)
    return {
        "system": summary(system),
        "rep": summary(rep),
        "total": summary(total),
        "untouched": untouched,
        "bands": [
            {"label": label, "count": n, "share": rate(n, touched)}
            for (label, _, _), n in zip(BANDS, bands, strict=True)
        ],
        "by_rep": compliance(per_rep, names, "Former member"),
        "by_team": compliance(per_team, teams, "No team"),
    }


def same(new, old, path="figures"):
    """Equal structure; numbers equal up to float rounding (percentile_cont's own
    arithmetic differs from Python's in the last bits)."""
    if isinstance(old, dict):
        assert isinstance(new, dict) and new.keys() == old.keys(), path
        for key in old:
            same(new[key], old[key], f"{path}.{key}")
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), (path, new, old)
        for i, (a, b) in enumerate(zip(new, old, strict=True)):
            same(a, b, f"{path}[{i}]")
    elif isinstance(old, float):
        assert new == pytest.approx(old, rel=1e-12, abs=1e-9), (path, new, old)
    else:
        assert new == old and type(new) is type(old), (path, new, old)


def assert_matches_oracle(query):
    same(time_in_stage(query), old_time_in_stage(query), "time_in_stage")
    same(speed_to_lead(query), old_speed_to_lead(query), "speed_to_lead")


# -- data ---------------------------------------------------------------------------


def random_moment(rng: random.Random) -> dt.datetime:
    """Mostly inside March, some before and after, some exactly on its edges."""
    edge = rng.random()
    if edge < 0.08:
        return START
    if edge < 0.16:
        return END
    if edge < 0.2:
        return END - dt.timedelta(microseconds=1)
    seconds = rng.randrange(-20 * 86400, 45 * 86400)
    return START + dt.timedelta(seconds=seconds, microseconds=rng.choice([0, rng.randrange(10**6)]))


def build_history(org, *, seed: int, leads: int = 24):
    """Leads with random stage history and assignments (some merged away)."""
    rng = random.Random(seed)
    team = f.TeamFactory(organization=org, name=f"Team {seed}")
    reps = [f.TeamMemberFactory(team=team).membership for _ in range(2)]
    reps.append(f.MembershipFactory(organization=org, role="sales_rep"))
    sources = [Channel.WEBINAR, Channel.PAID_SEARCH, ""]
    transitions, assignments = [], []
    with tenant_scope(org):
        made = []
        for _ in range(leads):
            created = random_moment(rng) - dt.timedelta(days=rng.randrange(0, 10))
            owner = rng.choice([*reps, None])
            lead = f.LeadFactory(organization=org, first_source=rng.choice(sources), owner=owner)
            Lead.objects.filter(pk=lead.pk).update(created_at=created)
            made.append(lead)
            at = created
            for _ in range(rng.randrange(0, 6)):
                # Sometimes in the same instant as the move before (ties go by id).
                if rng.random() > 0.15:
                    at = (
                        max(at, random_moment(rng))
                        if rng.random() < 0.5
                        else at
                        + dt.timedelta(
                            seconds=rng.choice([1, 59, 3600, 86400 * 3]),
                            microseconds=rng.randrange(10**6),
                        )
                    )
                transitions.append(
                    StageTransition(
                        organization=org, lead=lead, to_stage=rng.choice(STAGES), occurred_at=at
                    )
                )
            for _ in range(rng.randrange(0, 3)):
                assigned = random_moment(rng)
                touch = rng.random()
                if touch < 0.25:
                    touched = None
                elif touch < 0.5:  # exactly on a band edge
                    touched = assigned + dt.timedelta(seconds=rng.choice([0, 300, 900, 3600]))
                elif touch < 0.6:  # touched before it was assigned: counts as 0
                    touched = assigned - dt.timedelta(minutes=rng.randrange(1, 90))
                else:
                    touched = assigned + dt.timedelta(
                        seconds=rng.randrange(0, 3 * 3600), microseconds=rng.randrange(10**6)
                    )
                assignments.append(
                    Assignment(
                        organization=org,
                        lead=lead,
                        membership=rng.choice(reps),
                        team=team if rng.random() < 0.6 else None,
                        method=rng.choice(
                            [AssignmentMethod.MANUAL, AssignmentMethod.SLA_REASSIGN]
                            + [AssignmentMethod.MANUAL] * 2
                        ),
                        assigned_at=assigned,
                        first_touched_at=touched,
                        breached_at=assigned + dt.timedelta(hours=1)
                        if rng.random() < 0.3
                        else None,
                        is_current=False,
                    )
                )
        StageTransition.objects.bulk_create(transitions)
        Assignment.objects.bulk_create(assignments)
        # Merged leads keep their history; the reports leave it out.
        for lead in made[:3]:
            Lead.objects.filter(pk=lead.pk).update(merged_into=made[-1])
    return {"team": team, "reps": reps, "merged": made[:3]}


def query_for(org, membership=None, **params):
    return parse_report_query(
        {"start": "2026-03-01", "end": "2026-03-31", **params},
        organization=org,
        membership=membership,
        today=dt.date(2026, 6, 1),
    )


# -- the systematic comparison --------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_sql_figures_equal_the_python_figures(org, other_org, seed):
    built = build_history(org, seed=seed)
    build_history(other_org, seed=seed + 100)
    team, rep = built["team"], built["reps"][0]
    with tenant_scope(org):
        queries = [
            query_for(org),
            query_for(org, source="webinar"),
            query_for(org, rep=str(rep.pk)),
            query_for(org, team=str(team.pk)),
            query_for(org, membership=rep),  # a rep sees their team's leads only
            query_for(org, start="2026-03-31", end="2026-03-31"),
            query_for(org, start="2025-01-01", end="2025-01-31"),  # nothing at all
        ]
        for query in queries:
            assert_matches_oracle(query)
        # The merged leads had history in the period: leaving it out mattered.
        merged = [lead.pk for lead in built["merged"]]
        assert StageTransition.objects.filter(lead__in=merged, occurred_at__gte=START).exists()
    org.timezone = "America/New_York"  # the period's edges move with the org's timezone
    org.save(update_fields=["timezone"])
    with tenant_scope(org):
        assert_matches_oracle(query_for(org))


# -- small cases by hand --------------------------------------------------------------


def stays(org, *durations, stage="mql"):
    """One lead per duration: into `stage` at START + 1h, out `duration` seconds later."""
    for seconds in durations:
        lead = f.LeadFactory(organization=org)
        entered = START + dt.timedelta(hours=1)
        StageTransition.objects.create(
            organization=org, lead=lead, to_stage=stage, occurred_at=entered
        )
        if seconds is not None:
            StageTransition.objects.create(
                organization=org,
                lead=lead,
                to_stage="sal",
                occurred_at=entered + dt.timedelta(seconds=seconds),
            )


def mql_stay(org):
    with tenant_scope(org):
        return next(r for r in time_in_stage(query_for(org)) if r["stage"] == "mql")


def test_no_stays_and_no_assignments(org, other_org):
    stays(other_org, 60, 120)
    with tenant_scope(org):
        assert mql_stay(org) == {
            "stage": "mql",
            "label": "MQL",
            "stays": 0,
            "median": None,
            "p90": None,
            "open": 0,
        }
        speed = speed_to_lead(query_for(org))
        assert speed["total"] == {"median": None, "p95": None, "count": 0}
        assert [b["count"] for b in speed["bands"]] == [0, 0, 0, 0]
        assert [b["share"] for b in speed["bands"]] == [None] * 4
        assert speed["by_rep"] == speed["by_team"] == []
        assert_matches_oracle(query_for(org))


def test_one_stay(org):
    stays(org, 90)
    assert mql_stay(org) | {"label": ""} == {
        "stage": "mql",
        "label": "",
        "stays": 1,
        "median": 90,
        "p90": 90,
        "open": 0,
    }


def test_even_counts_interpolate(org):
    stays(org, 10, 40, None)  # two closed, one still MQL
    row = mql_stay(org)
    assert (row["stays"], row["open"], row["median"]) == (2, 1, 25)
    assert row["p90"] == pytest.approx(10 + 0.9 * 30)
    stays(org, 100, 1000)  # 10, 40, 100, 1000
    row = mql_stay(org)
    assert row["median"] == pytest.approx(70)
    assert row["p90"] == pytest.approx(100 + 0.7 * 900)


def test_speed_bands_count_their_lower_edge(org):
    rep = f.MembershipFactory(organization=org, role="sales_rep")
    with tenant_scope(org):
        for minutes in (0, 5, 15, 60, 14):
            lead = f.LeadFactory(organization=org)
            Lead.objects.filter(pk=lead.pk).update(created_at=START)
            Assignment.objects.create(
                organization=org,
                lead=lead,
                membership=rep,
                method=AssignmentMethod.MANUAL,
                assigned_at=START,
                first_touched_at=START + dt.timedelta(minutes=minutes),
            )
        speed = speed_to_lead(query_for(org))
    assert [b["count"] for b in speed["bands"]] == [1, 2, 1, 1]
    assert speed["total"]["median"] == 14 * 60
    assert speed["total"]["p95"] == pytest.approx(15 * 60 + 0.8 * 45 * 60)


def test_velocity_reads_figures_not_rows(org, other_org):
    """The velocity statements return figures (one row per stage, one for speed),
    join no lead table row by row and run no subquery per assignment."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    build_history(org, seed=3)
    with tenant_scope(org), CaptureQueriesContext(connection) as captured:
        time_in_stage(query_for(org))
        speed_to_lead(query_for(org))
    statements = [q["sql"] for q in captured.captured_queries if "pipeline_" in q["sql"]]
    assert len(statements) == 3  # stays, speed, SLA counts by rep and team
    ranked = "percentile_cont" if connection.vendor == "postgresql" else "ROW_NUMBER()"
    assert all(ranked in sql for sql in statements[:2])
    for sql in statements:
        assert 'JOIN "leads_lead"' not in sql  # only EXISTS / NOT EXISTS on the lead
        assert 'ORDER BY U0."occurred_at" DESC' not in sql  # the old handoff subquery
