"""Source & campaign report: quality per source and campaign, gating advice,
economics, the CSV of each table, tenancy and a pinned query count."""

import pytest
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from leads.models import Channel
from reports.selectors.sources import source_quality
from tests import factories as f
from tests.reports.test_funnel import MARCH, at, build_dataset, build_noise, make_lead, march


def url(org):
    return reverse("reports:sources", kwargs={"org_slug": org.slug})


@pytest.fixture
def data(org, other_org):
    built = build_dataset(org)
    build_noise(other_org)
    return built


def test_source_quality_rates_and_order(org, data):
    with tenant_scope(org):
        quality = source_quality(march(org))
    sources = quality["sources"]
    # Most junk first, then the lowest MQL rate.
    assert [r["label"] for r in sources] == ["Paid search", "Organic search", "Webinar"]
    paid, organic, webinar = sources
    assert (paid["leads"], paid["junk"], paid["mql"], paid["sql"], paid["lost"]) == (3, 1, 2, 1, 1)
    assert paid["junk_rate"] == pytest.approx(1 / 3)
    assert paid["win_rate"] == 0.0
    assert organic["win_rate"] is None and organic["mql_rate"] == 0.0
    assert (webinar["mql_rate"], webinar["sql_rate"], webinar["win_rate"]) == (1.0, 1.0, 1.0)
    assert not any(r["flag"] for r in sources)  # under 10 leads: no advice yet
    campaigns = {r["label"]: r for r in quality["campaigns"]}
    assert campaigns["Spring webinar"]["leads"] == 2 and campaigns["No campaign"]["leads"] == 1
    assert quality["total"]["leads"] == 6


def test_junk_heavy_source_is_flagged_for_gating(org, data, marketer, client_for):
    lists = f.CampaignFactory(organization=org, name="Bought list", channel=Channel.PURCHASED_LIST)
    with tenant_scope(org):
        for i in range(10):
            make_lead(
                org,
                at(3, 10 + i),
                source=Channel.PURCHASED_LIST,
                campaign=lists,
                quality="junk" if i < 4 else "ok",
            )
    response = client_for(marketer).get(url(org), MARCH)
    assert response.status_code == 200
    first = response.context["source_chart"].table.rows[0]
    assert first["label"] == "Purchased list" and first["junk_rate"] == pytest.approx(0.4)
    assert first["flag"].startswith("A third or more")
    assert 'data-testid="gate-advice"' in response.content.decode()


def test_source_csv(org, data, admin, client_for):
    response = client_for(admin).get(url(org), {**MARCH, "export": "sources"})
    lines = response.content.decode().splitlines()
    assert lines[0] == "Source,Leads,Junk rate (%),MQL rate (%),SQL rate (%),Won,Win rate (%)"
    assert lines[1] == "Paid search,3,33.33,66.67,33.33,0,0.00"
    assert lines[2] == "Organic search,1,0.00,0.00,0.00,0,"  # win rate undefined: empty
    assert lines[-1].startswith("All leads,6,")


def test_other_tenant_and_query_count(
    org, other_org, data, other_admin, client_for, django_assert_num_queries
):
    client = client_for(other_admin)
    client.get(url(other_org), MARCH)
    with django_assert_num_queries(12) as small:
        response = client.get(url(other_org), MARCH)
    assert [r["label"] for r in response.context["source_chart"].table.rows] == ["Webinar"]
    with tenant_scope(other_org):
        for i in range(8):
            make_lead(other_org, at(3, 2 + i), source=Channel.SOCIAL, stages=[("mql", at(3, 12))])
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(url(other_org), MARCH)
    assert response.context["source_chart"].table.footer["leads"] == 11
