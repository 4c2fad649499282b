"""The marketing dashboard: numbers, CSV, bad input, tenancy and a pinned query count."""

import csv
import io

import pytest
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from leads.models import Channel
from tests import factories as f
from tests.reports.test_funnel import MARCH, at, build_dataset, build_noise, make_lead


def url(org):
    return reverse("reports:marketing", kwargs={"org_slug": org.slug})


@pytest.fixture
def data(org, other_org):
    built = build_dataset(org)
    built["foreign_campaign"] = build_noise(other_org)
    return built


def rows(response):
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_dashboard_kpis_and_charts(org, data, marketer, client_for):
    response = client_for(marketer).get(url(org), {**MARCH, "grain": "day"})
    assert response.status_code == 200
    kpis = {k.label: k for k in response.context["kpis"]}
    assert (kpis["New leads"].value, kpis["New leads"].previous) == (6, 1)
    assert kpis["New leads"].change == pytest.approx(5.0)
    assert (kpis["MQLs"].value, kpis["Won"].value) == (4, 1)
    assert kpis["Win rate"].value == pytest.approx(0.5)
    assert kpis["Win rate"].previous is None  # February decided nothing: "—"
    assert kpis["Lead velocity"].value == pytest.approx(3.0)
    html = response.content.decode()
    for slug in ("volume", "funnel", "lvr", "campaigns", "cost"):
        assert f'data-testid="chart-{slug}"' in html
    assert "—" in html
    volume = response.context["volume"]
    assert volume.table.footer["total"] == 6
    assert len(volume.labels) == 31
    # The last lead arrived at 23:59 on 31 March: the last day's bucket.
    assert volume.table.rows[-1]["organic_search"] == 1


def test_volume_csv_and_formula_neutralization(org, data, admin, client_for):
    f.CampaignFactory(organization=org, name="=HYPERLINK(evil)", channel=Channel.EVENT, cost=10)
    with tenant_scope(org):
        evil = org and make_lead(org, at(3, 9), source=Channel.EVENT)
    assert evil.pk
    client = client_for(admin)
    campaigns = rows(client.get(url(org), {**MARCH, "export": "campaigns"}))
    assert campaigns[0] == ["Campaign", "Channel", "New leads", "Previous period", "Change (%)"]
    by_name = {r[0]: r for r in campaigns[1:]}
    assert by_name["Search ads"][2:] == ["3", "0", ""]
    assert by_name["Spring webinar"][2:] == ["2", "1", "100.00"]
    cost = rows(client.get(url(org), {**MARCH, "export": "cost"}))
    assert ["'=HYPERLINK(evil)"] not in [r[:1] for r in cost]  # channels, not campaigns here
    assert cost[-1][0] == "All campaigns" and cost[-1][1] == "1510.00"
    assert any(r[0] == "Paid search" and r[-1] == "-100.00" for r in cost)  # numbers stay numbers
    economics = client.get(
        reverse("reports:sources", kwargs={"org_slug": org.slug}), {**MARCH, "export": "economics"}
    )
    assert "'=HYPERLINK(evil)" in economics.content.decode()


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2026-03-31", "end": "2026-03-01"},
        {"start": "2000-01-01", "end": "2026-03-01"},
        {"start": "03/01/2026"},
        {"source": "<script>"},
        {"grain": "year"},
    ],
)
def test_bad_input_shows_the_message_above_an_empty_state(org, data, admin, client_for, params):
    response = client_for(admin).get(url(org), params)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-testid="report-error"' in html and "No report for this query" in html
    assert "<script>" not in html.split('data-testid="report-error"')[1][:400]
    assert client_for(admin).get(url(org), {**params, "export": "volume"}).status_code == 400


def test_another_orgs_campaign_never_shows_its_numbers(org, data, admin, client_for):
    foreign = data["foreign_campaign"]
    response = client_for(admin).get(url(org), {**MARCH, "campaign": str(foreign.pk)})
    assert response.status_code == 400
    assert "Unknown campaign" in response.content.decode()
    assert "99,999" not in response.content.decode()
    export = client_for(admin).get(url(org), {**MARCH, "campaign": foreign.pk, "export": "cost"})
    assert export.status_code == 400 and b"99999" not in export.content


def test_other_org_sees_only_its_own(other_org, other_admin, data, client_for):
    response = client_for(other_admin).get(url(other_org), MARCH)
    kpis = {k.label: k.value for k in response.context["kpis"]}
    assert (kpis["New leads"], kpis["Won"]) == (3, 3)
    labels = [r["campaign"] for r in response.context["campaigns"].table.rows]
    assert "Spring webinar" not in labels and "Search ads" not in labels


def test_rep_sees_their_team_only(org, data, client_for):
    response = client_for(data["rep_a"]).get(url(org), MARCH)
    assert response.status_code == 200
    kpis = {k.label: k.value for k in response.context["kpis"]}
    assert (kpis["New leads"], kpis["Won"]) == (2, 1)  # L1 and L3
    assert "your and your team" in response.content.decode()


def _grow(org, n):
    campaign = f.CampaignFactory(organization=org, channel=Channel.EVENT)
    with tenant_scope(org):
        for i in range(n):
            make_lead(
                org,
                at(3, 1 + i % 28),
                source=Channel.EVENT,
                campaign=campaign,
                stages=[("mql", at(3, 28)), ("sal", at(3, 29))],
            )


def test_query_count_does_not_grow_with_data(
    org, data, admin, client_for, django_assert_num_queries
):
    client = client_for(admin)
    client.get(url(org), MARCH)  # warm the session and caches
    with django_assert_num_queries(16) as small:
        client.get(url(org), MARCH)
    _grow(org, 25)
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(url(org), MARCH)
    assert response.context["kpis"][0].value == 6 + 25
