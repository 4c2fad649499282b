"""Velocity from the rollups (reports.velocity_rollups): the org-wide funnel &
velocity page merges day histograms instead of sorting the period's rows.

The figures equal the exact ones (the live SQL selectors, themselves checked
against Python in test_velocity_sql) — counts exactly, durations within 1% — on
the random history of test_velocity_sql with a second tenant, after a full
rebuild, after an incremental refresh, and in another timezone; the page's query
count does not grow with the data; a stale, absent or unfit rollup is not used."""

import datetime as dt
import math

import pytest
from django.urls import reverse
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from pipeline.models import Assignment, StageTransition
from reports.models import RollupState, SlaDayRollup, VelocityRollup
from reports.selectors.velocity import speed_table, speed_to_lead, stay_table, time_in_stage
from reports.selectors.velocity_rollups import sla_counts, velocity_figures
from reports.services.rollups import rollup_refresh
from reports.sketch import LN_GAMMA, RELATIVE_ERROR, ZERO_BUCKET, percentile_of
from reports.views.funnel import funnel_context
from tests.reports.test_velocity_sql import START, build_history, query_for
from tests.reports.velocity_checks import assert_close

QUERIES = [
    {},
    {"start": "2026-03-31", "end": "2026-03-31"},
    {"start": "2026-02-10", "end": "2026-04-20"},
    {"start": "2025-01-01", "end": "2025-01-31"},  # nothing at all
]


def from_rollups(query):
    stays, speed = velocity_figures(query)
    return stay_table(stays), speed_table(speed, sla_counts(query))


def assert_rollups_match_live(org):
    with tenant_scope(org):
        for params in QUERIES:
            query = query_for(org, **params)
            stays, speed = from_rollups(query)
            assert_close(stays, time_in_stage(query), f"stays {params}")
            assert_close(speed, speed_to_lead(query), f"speed {params}")


def refresh(org, **kwargs):
    with tenant_scope(org):
        return rollup_refresh(organization_id=org.pk, **kwargs)


@pytest.mark.parametrize("seed", [1, 2])
def test_rollup_figures_equal_the_exact_figures(org, other_org, seed):
    build_history(org, seed=seed, leads=40)
    build_history(other_org, seed=seed + 100, leads=40)
    refresh(org)
    refresh(other_org)
    with tenant_scope(org):
        stays, _ = velocity_figures(query_for(org))
        assert sum(s["stay_n"] for s in stays.values()) > 10  # the data is not empty
    assert_rollups_match_live(org)
    assert_rollups_match_live(other_org)
    org.timezone = "America/New_York"  # the days move: the next refresh rebuilds
    org.save(update_fields=["timezone"])
    assert refresh(org)["days"] == -1
    assert_rollups_match_live(org)


def age(org):
    """As if the refresh ran 30 minutes ago and the leads were last changed before it."""
    now = timezone.now()
    with tenant_scope(org):
        Lead.objects.update(updated_at=now - dt.timedelta(days=1))
        RollupState.objects.update(refreshed_at=now - dt.timedelta(minutes=30))


def changed_by(org, change):
    """Apply one change, refresh incrementally: the rollups moved and equal live."""
    age(org)
    with tenant_scope(org):
        before = sorted(VelocityRollup.objects.values_list("day", "measure", "bucket", "n"))
        before_sla = sorted(SlaDayRollup.objects.values_list("day", "assigned", "met", "breached"))
        change(timezone.now())
    assert refresh(org)["days"] != -1, "an incremental refresh"
    with tenant_scope(org):
        after = sorted(VelocityRollup.objects.values_list("day", "measure", "bucket", "n"))
        after_sla = sorted(SlaDayRollup.objects.values_list("day", "assigned", "met", "breached"))
    assert (after, after_sla) != (before, before_sla)
    assert_rollups_match_live(org)


def test_incremental_refresh_follows_moves_touches_breaches_and_merges(org, other_org):
    build_history(org, seed=5, leads=40)
    build_history(other_org, seed=105, leads=20)
    refresh(org)

    def live():
        return Lead.objects.filter(merged_into__isnull=True)

    def close_a_stay(now):  # a stay that began in March and was still open ends now
        stay = (
            StageTransition.objects.filter(occurred_at__gte=START, lead__in=live())
            .order_by("-occurred_at")
            .first()
        )
        StageTransition.objects.create(
            organization=org, lead_id=stay.lead_id, to_stage="sal", occurred_at=now
        )
        Lead.objects.filter(pk=stay.lead_id).update(updated_at=now)

    def first_touch(now):  # the service bumps the lead
        a = Assignment.objects.filter(first_touched_at__isnull=True, lead__in=live()).first()
        Assignment.objects.filter(pk=a.pk).update(first_touched_at=a.assigned_at)
        Lead.objects.filter(pk=a.lead_id).update(updated_at=now)

    def breach(now):  # the SLA sweep does not bump the lead
        a = Assignment.objects.filter(breached_at__isnull=True, lead__in=live()).first()
        Assignment.objects.filter(pk=a.pk).update(breached_at=now)

    def merge(now):
        gone = live().filter(assignments__isnull=False).order_by("pk").last()
        keep = live().exclude(pk=gone.pk).first()
        Lead.objects.filter(pk=gone.pk).update(merged_into=keep, updated_at=now)

    for change in (close_a_stay, first_touch, breach, merge):
        changed_by(org, change)


def test_the_page_reads_velocity_from_fresh_org_wide_rollups_only(
    org, other_org, admin, client_for
):
    built = build_history(org, seed=7, leads=30)
    build_history(other_org, seed=107, leads=10)
    url = reverse("reports:funnel", kwargs={"org_slug": org.slug})
    march = {"start": "2026-03-01", "end": "2026-03-31"}
    client = client_for(admin)

    def velocity_as_of(**params):
        response = client.get(url, {**march, **params})
        assert response.status_code == 200
        return response.context["velocity_as_of"]

    assert velocity_as_of() is None  # never refreshed
    refresh(org)
    page = client.get(url, march)
    assert page.context["velocity_as_of"] is not None
    assert "cohorts and velocity as of" in page.content.decode()
    with tenant_scope(org):
        fast = funnel_context(query_for(org))
        live = funnel_context(query_for(org), fast=False)
    assert fast["velocity_as_of"] is not None and live["velocity_as_of"] is None
    assert_close(fast["stages"].table.rows, live["stages"].table.rows)
    # Views the rollups do not split by: live.
    assert velocity_as_of(source="webinar") is None
    assert velocity_as_of(rep=str(built["reps"][0].pk)) is None
    assert velocity_as_of(team=str(built["team"].pk)) is None
    with tenant_scope(org):
        state = RollupState.objects.get()
        # Stale: the refresh job stopped an hour ago.
        RollupState.objects.update(velocity_at=timezone.now() - dt.timedelta(hours=2))
        assert velocity_as_of() is None
        # Built before the velocity rollups existed.
        RollupState.objects.update(velocity_at=None)
        assert velocity_as_of() is None
        assert funnel_context(query_for(org))["as_of"] is not None  # cohorts still fast
        RollupState.objects.update(velocity_at=state.velocity_at)
        assert velocity_as_of() is not None
    # An incremental refresh after velocity_at=None builds it whole, then it is used.
    with tenant_scope(org):
        RollupState.objects.update(velocity_at=None)
        VelocityRollup.objects.all().delete()
        SlaDayRollup.objects.all().delete()
    refresh(org)
    assert velocity_as_of() is not None
    assert_rollups_match_live(org)


def test_velocity_query_count_does_not_grow(org, other_org, django_assert_num_queries):
    build_history(org, seed=9, leads=10)
    build_history(other_org, seed=109, leads=10)
    refresh(org)
    with tenant_scope(org), django_assert_num_queries(2):
        small = from_rollups(query_for(org))
    build_history(org, seed=10, leads=60)
    refresh(org)
    with tenant_scope(org), django_assert_num_queries(2):
        large = from_rollups(query_for(org))
    assert sum(r["stays"] for r in large[0]) > sum(r["stays"] for r in small[0])


def test_percentile_of_a_histogram_interpolates_within_one_percent():
    assert percentile_of([], 0, 50) is None
    assert percentile_of([(ZERO_BUCKET, 0, 3)], 3, 90) == 0.0
    values = [0.5, 7, 60, 61, 3600, 86400 * 3]
    buckets: dict[int, int] = {}
    for v in values:
        b = math.ceil(math.log(v) / LN_GAMMA)
        buckets[b] = buckets.get(b, 0) + 1
    ranked, before = [], 0
    for b, n in sorted(buckets.items()):
        ranked.append((b, before, n))
        before += n
    for p, exact in ((50, 60.5), (90, 3600 + 0.5 * (86400 * 3 - 3600)), (0, 0.5), (100, 259200)):
        assert percentile_of(ranked, len(values), p) == pytest.approx(exact, rel=RELATIVE_ERROR)
