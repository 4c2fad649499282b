"""The score on lead pages: the "why this score" panel and list filters/sorting."""

import pytest
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from leads.models import ActivityKind
from scoring.engine import rescore
from scoring.models import GatingRule, ScoringRule, ScoringSettings
from tests.factories import ActivityFactory, LeadFactory


@pytest.fixture
def scored(org, other_org):
    with tenant_scope(org):
        ScoringSettings.objects.create(organization=org, mql_threshold=50, half_life_days=None)
        ScoringRule.objects.create(
            organization=org,
            name="VP title",
            kind="fit",
            field="title",
            operator="contains",
            value="vp",
            points=10,
        )
        ScoringRule.objects.create(
            organization=org,
            name="Demo request",
            kind="engagement",
            activity_kinds=["demo_request"],
            points=50,
        )
        GatingRule.objects.create(
            organization=org,
            reason="Students are not customers",
            field="title",
            operator="contains",
            value="student",
        )
        hot = LeadFactory(organization=org, email="vp@initech.com", title="VP Sales")
        ActivityFactory(lead=hot, kind=ActivityKind.DEMO_REQUEST)
        student = LeadFactory(organization=org, email="s@uni.edu", title="Student")
        ActivityFactory(lead=student, kind=ActivityKind.DEMO_REQUEST)
        cold = LeadFactory(organization=org, email="cold@initech.com", title="Analyst")
        rescore(organization_id=org.pk)
    LeadFactory(organization=other_org, email="other@globex.com", title="VP")
    return hot, student, cold


def url(name, org, **kwargs):
    return reverse(f"leads:{name}", kwargs={"org_slug": org.slug, **kwargs})


@pytest.mark.django_db
def test_detail_explains_the_score(admin_client, org, scored):
    hot, student, _ = scored
    html = admin_client.get(url("lead_detail", org, lead_id=hot.pk)).content.decode()
    assert 'data-testid="score-total">60<' in html
    assert "VP title" in html and "+10" in html and "Demo request" in html and "+50" in html
    assert "MQL" in html
    gated = admin_client.get(url("lead_detail", org, lead_id=student.pk)).content.decode()
    assert "Blocked from MQL: Students are not customers" in gated


@pytest.mark.django_db
def test_list_filters_and_sorts_by_score(admin_client, org, scored):
    hot, student, cold = scored
    page = admin_client.get(url("lead_list", org) + "?o=-score").context["page"]
    assert next(iter(page)).pk == hot.pk
    mqls = admin_client.get(url("lead_list", org) + "?mql=true").context["page"]
    assert [lead.pk for lead in mqls] == [hot.pk]
    graded = admin_client.get(url("lead_list", org) + "?min_score=50").context["page"]
    assert {lead.pk for lead in graded} == {hot.pk, student.pk}
    cold_band = admin_client.get(url("lead_list", org) + "?band=cold").context["page"]
    assert cold.pk in {lead.pk for lead in cold_band}
