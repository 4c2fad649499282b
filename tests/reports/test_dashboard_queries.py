"""The dashboard's fast path (rollups refreshed by Celery) gives exactly the live
numbers, stays correct through incremental refreshes, and runs a fixed number of
queries whatever the data size."""

import datetime as dt

import pytest
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from leads.models import Channel, Lead
from pipeline.models import StageTransition
from reports.models import LeadCohortRollup, RollupState
from reports.services.rollups import rollup_refresh
from reports.tasks import refresh_all_rollups
from reports.views.funnel import funnel_context
from reports.views.marketing import marketing_context
from tests import factories as f
from tests.reports.test_funnel import MARCH, at, build_dataset, build_noise, make_lead, march
from tests.reports.velocity_checks import assert_close

QUERIES = [
    MARCH,
    {**MARCH, "grain": "day"},
    {"start": "2026-02-10", "end": "2026-04-05", "grain": "month"},
    {**MARCH, "source": "paid_search"},
    {**MARCH, "compare": "none"},
]


@pytest.fixture
def data(org, other_org):
    built = build_dataset(org)
    build_noise(other_org)
    return built


def comparable(context: dict) -> dict:
    """The numbers of a dashboard context (not its freshness stamp)."""
    return {
        "kpis": [(k.label, k.value, k.previous) for k in context["kpis"]],
        "charts": {
            name: (context[name].labels, context[name].datasets, context[name].table.rows)
            for name in ("volume", "funnel", "lvr", "campaigns")
        },
        "volume_footer": context["volume"].table.footer,
        "cost": (context["cost"].rows, context["cost"].footer),
    }


def assert_paths_agree(org, params_list=QUERIES, **extra):
    with tenant_scope(org):
        for params in params_list:
            query = march(org, **{**params, **extra})
            fast = marketing_context(query)
            assert fast["as_of"] is not None, "the fast path was not taken"
            assert comparable(fast) == comparable(marketing_context(query, fast=False)), params


def test_fast_path_equals_slow_path(org, data):
    with tenant_scope(org):
        rollup_refresh(organization_id=org.pk)
        assert LeadCohortRollup.objects.count() > 0
    assert_paths_agree(org)
    assert_paths_agree(org, [MARCH], campaign=str(data["ads"].pk))


def test_incremental_refresh_follows_new_facts(org, data):
    with tenant_scope(org):
        rollup_refresh(organization_id=org.pk)
        # Time passes: the refresh was half an hour ago, nothing changed since.
        now = dt.datetime.now(dt.UTC)
        Lead.objects.update(updated_at=now - dt.timedelta(hours=1))
        RollupState.objects.update(refreshed_at=now - dt.timedelta(minutes=30))
        # After the refresh: an old lead converts, a new lead arrives, one is merged away.
        lead = Lead.objects.get(stage="sal", first_source=Channel.PAID_SEARCH)
        StageTransition.objects.create(
            organization=org, lead=lead, from_stage="sal", to_stage="sql", occurred_at=at(4, 2)
        )
        Lead.objects.filter(pk=lead.pk).update(stage="sql", updated_at=dt.datetime.now(dt.UTC))
        make_lead(org, at(3, 15), source=Channel.SOCIAL, stages=[("mql", at(3, 16))])
        gone = Lead.objects.get(first_source=Channel.ORGANIC_SEARCH, created_at__lt=at(4, 1))
        Lead.objects.filter(pk=gone.pk).update(merged_into=lead, updated_at=dt.datetime.now(dt.UTC))
        stale = marketing_context(march(org))
        assert stale["kpis"][0].value == 6  # still the refreshed figures
        result = rollup_refresh(organization_id=org.pk)
        assert 0 < result["days"] <= 3
    assert_paths_agree(org)
    with tenant_scope(org):
        assert marketing_context(march(org))["kpis"][0].value == 6  # +1 new, −1 merged


def test_rep_scope_and_timezone_change_fall_back_to_live(org, data, client_for):
    with tenant_scope(org):
        rollup_refresh(organization_id=org.pk)
    response = client_for(data["rep_a"]).get(
        reverse("reports:marketing", kwargs={"org_slug": org.slug}), MARCH
    )
    assert response.context["as_of"] is None
    org.timezone = "America/New_York"
    org.save()
    with tenant_scope(org):
        assert marketing_context(march(org))["as_of"] is None
        assert rollup_refresh(organization_id=org.pk)["days"] == -1  # full rebuild
        assert RollupState.objects.get().timezone == "America/New_York"
    assert_paths_agree(org)


def test_beat_fans_out_one_refresh_per_org(org, other_org, data):
    assert refresh_all_rollups() >= 2
    with tenant_scope(other_org):
        assert RollupState.objects.count() == 1
        assert sum(LeadCohortRollup.objects.values_list("leads", flat=True)) == 3
    with tenant_scope(org):
        assert sum(LeadCohortRollup.objects.values_list("leads", flat=True)) == 9


def test_dashboard_query_count_is_flat(org, data, admin, client_for, django_assert_num_queries):
    url = reverse("reports:marketing", kwargs={"org_slug": org.slug})
    client = client_for(admin)
    with tenant_scope(org):
        rollup_refresh(organization_id=org.pk)
    client.get(url, MARCH)
    with django_assert_num_queries(16) as small:
        response = client.get(url, MARCH)
    assert response.context["as_of"] is not None
    campaign = f.CampaignFactory(organization=org, channel=Channel.EVENT)
    with tenant_scope(org):
        for i in range(30):
            make_lead(
                org,
                at(3, 1 + i % 28),
                source=Channel.EVENT,
                campaign=campaign,
                stages=[("mql", at(3, 28))],
            )
        rollup_refresh(organization_id=org.pk)
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(url, MARCH)
    assert response.context["kpis"][0].value == 36


def funnel_figures(context: dict) -> dict:
    return {
        "kpis": [(k.label, k.value) for k in context["kpis"]],
        "charts": {
            name: (context[name].labels, context[name].datasets, context[name].table.rows)
            for name in ("funnel", "cohorts", "stages", "speed")
        },
    }


def test_funnel_page_reads_the_cohorts_from_the_rollups(org, data, admin, client_for):
    with tenant_scope(org):
        rollup_refresh(organization_id=org.pk)
        for params in QUERIES:
            query = march(org, **params)
            fast = funnel_context(query)
            assert fast["as_of"] is not None, "the fast path was not taken"
            live = funnel_context(query, fast=False)
            assert live["as_of"] is None
            # Velocity from the rollups' histograms: durations within 1%.
            assert_close(funnel_figures(fast), funnel_figures(live), str(params))
    page = client_for(admin).get(reverse("reports:funnel", kwargs={"org_slug": org.slug}), MARCH)
    assert 'data-testid="as-of"' in page.content.decode()
    # A rep's view is scoped to their team: never the org-wide rollups.
    rep_page = client_for(data["rep_a"]).get(
        reverse("reports:funnel", kwargs={"org_slug": org.slug}), MARCH
    )
    assert rep_page.context["as_of"] is None
