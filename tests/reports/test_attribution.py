"""Attribution: each model's shares, hand-computed, and the page's totals."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from pipeline.models import Opportunity, OpportunityStatus
from reports.period import parse_report_query
from reports.selectors.attribution import MODELS, Touch, attribution_report, weights
from tests.factories import ActivityFactory, CampaignFactory, LeadFactory, OpportunityFactory

UTC = dt.UTC
PERIOD = {"start": "2025-03-01", "end": "2025-03-31"}


def t(day: int) -> Touch:
    return Touch(campaign_id=day, at=dt.datetime(2025, 3, day, tzinfo=UTC))


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("first_touch", [1, 0, 0, 0, 0]),
        ("last_touch", [0, 0, 0, 0, 1]),
        ("linear", [0.2] * 5),
        # first 0.4, creation (index 1) 0.4, three others share 0.2
        ("u_shaped", [0.4, 0.4, 0.2 / 3, 0.2 / 3, 0.2 / 3]),
        # first, creation, opportunity (index 3) 0.3 each, two others share 0.1
        ("w_shaped", [0.3, 0.3, 0.05, 0.3, 0.05]),
    ],
)
def test_five_touches(model, expected):
    assert weights([t(d) for d in range(1, 6)], model, 1, 3) == pytest.approx(expected)


def test_edge_cases():
    one = [t(1)]
    for model in MODELS:
        assert weights(one, model, 0, 0) == [1.0]
    two = [t(1), t(2)]
    assert weights(two, "u_shaped", 1, None) == pytest.approx([0.5, 0.5])
    # First touch created the lead too (80 % together), no others: all of it.
    assert weights(two, "u_shaped", 0, None) == pytest.approx([0.8 / 1.0, 0.2])
    # W-shaped, creation = first, opportunity = second: 0.6 vs 0.3, renormalized.
    assert weights(two, "w_shaped", 0, 1) == pytest.approx([2 / 3, 1 / 3])
    assert weights([], "linear", None, None) == []


@pytest.fixture
def deals(org, other_org):
    with tenant_scope(org):
        webinar = CampaignFactory(organization=org, name="Webinar", channel="webinar", cost=100)
        ads = CampaignFactory(organization=org, name="Ads", channel="paid_search", cost=500)
        lead = LeadFactory(organization=org, first_campaign=webinar, stage="won")
        # Created the lead, then two ad clicks; one after the close does not count.
        for day, campaign in ((2, webinar), (5, ads), (9, ads), (25, ads)):
            ActivityFactory(
                organization=org,
                lead=lead,
                campaign=campaign,
                occurred_at=dt.datetime(2025, 3, day, tzinfo=UTC),
            )
        opp = OpportunityFactory(
            lead=lead,
            amount=1000,
            status=OpportunityStatus.WON,
            closed_at=dt.datetime(2025, 3, 20, tzinfo=UTC),
        )
        Opportunity.objects.filter(pk=opp.pk).update(created_at=dt.datetime(2025, 3, 6, tzinfo=UTC))
        # A won deal with no campaign at all.
        OpportunityFactory(
            lead=LeadFactory(organization=org, stage="won"),
            amount=300,
            status=OpportunityStatus.WON,
            closed_at=dt.datetime(2025, 3, 21, tzinfo=UTC),
        )
    with tenant_scope(other_org):
        foreign = CampaignFactory(organization=other_org, name="Foreign")
        lead = LeadFactory(organization=other_org, first_campaign=foreign)
        OpportunityFactory(
            lead=lead,
            amount=99999,
            status=OpportunityStatus.WON,
            closed_at=dt.datetime(2025, 3, 20, tzinfo=UTC),
        )
    return webinar, ads


def test_revenue_per_campaign_under_each_model(org, admin, deals):
    with tenant_scope(org):
        query = parse_report_query(PERIOD, organization=org, membership=admin)
        report = attribution_report(organization_id=org.pk, query=query, model="w_shaped")
    assert (report.deals, report.revenue, report.currency) == (2, 1300, "USD")
    rows = {c.name: c for c in report.campaigns}
    assert list(rows) == ["Webinar", "Ads", "Unattributed"]  # best first, unattributed last
    webinar, ads = rows["Webinar"], rows["Ads"]
    # Journey: webinar (first + creation), ads (opportunity creation: latest before 6 Mar), ads.
    assert webinar.revenue["first_touch"] == pytest.approx(1000)
    assert ads.revenue["last_touch"] == pytest.approx(1000)
    assert webinar.revenue["linear"] == pytest.approx(1000 / 3)
    assert webinar.revenue["u_shaped"] == pytest.approx(800)  # 40 + 40; ads share 20
    assert webinar.revenue["w_shaped"] == pytest.approx(600)  # 30 + 30; ads 30 + 10
    assert ads.revenue["w_shaped"] == pytest.approx(400)
    assert (ads.touches, len(ads.deals)) == (2, 1)
    assert rows["Unattributed"].revenue["linear"] == pytest.approx(300)
    assert "Foreign" not in rows


def test_page_switches_models_and_exports(org, admin_client, deals):
    url = reverse("reports:attribution", kwargs={"org_slug": org.slug})
    page = admin_client.get(url, {**PERIOD, "model": "u_shaped"})
    assert page.status_code == 200
    assert b"U-shaped (40/40/20)" in page.content and b"800.00" in page.content
    bad = admin_client.get(url, {**PERIOD, "model": "made-up"})
    assert bad.status_code == 200 and b"model-notice" in bad.content
    csv = admin_client.get(url, {**PERIOD, "export": "attribution"}).content.decode()
    assert "Webinar,Webinar,1,1,600.00" in csv and "99999" not in csv
    empty = admin_client.get(url, {"start": "2024-01-01", "end": "2024-01-31"})
    assert empty.status_code == 200 and b"No deals won in this period" in empty.content


def test_query_count_is_constant(org, admin_client, deals, django_assert_num_queries):
    url = reverse("reports:attribution", kwargs={"org_slug": org.slug})
    admin_client.get(url, PERIOD)
    with django_assert_num_queries(13) as first:
        admin_client.get(url, PERIOD)
    with tenant_scope(org):
        for _ in range(4):
            lead = LeadFactory(organization=org, first_campaign=deals[1])
            ActivityFactory(
                organization=org,
                lead=lead,
                campaign=deals[0],
                occurred_at=dt.datetime(2025, 3, 3, tzinfo=UTC),
            )
            OpportunityFactory(
                lead=lead,
                amount=10,
                status=OpportunityStatus.WON,
                closed_at=dt.datetime(2025, 3, 10, tzinfo=UTC),
            )
    with django_assert_num_queries(len(first.captured_queries)):
        admin_client.get(url, PERIOD)


def _eur_win(org, campaign, amount=48000):
    with tenant_scope(org):
        lead = LeadFactory(organization=org, first_campaign=campaign, stage="won")
        ActivityFactory(
            organization=org,
            lead=lead,
            campaign=campaign,
            occurred_at=dt.datetime(2025, 3, 4, tzinfo=UTC),
        )
        OpportunityFactory(
            lead=lead,
            amount=amount,
            currency="EUR",
            status=OpportunityStatus.WON,
            closed_at=dt.datetime(2025, 3, 22, tzinfo=UTC),
        )


def test_a_deal_in_another_currency_gets_its_own_table(org, other_org, admin_client, deals):
    """A 48,000 EUR win in a USD organization is shown in EUR, never dropped,
    never added to the USD figures."""
    webinar, _ = deals
    _eur_win(org, webinar)
    _eur_win(other_org, CampaignFactory(organization=other_org), amount=77777)
    url = reverse("reports:attribution", kwargs={"org_slug": org.slug})
    page = admin_client.get(url, PERIOD).content.decode()
    assert "Won revenue (EUR)" in page and "48,000.00" in page
    assert "Won revenue (USD)" in page and "1,300.00" in page
    assert "49,300" not in page and "77,777" not in page
    usd = admin_client.get(url, {**PERIOD, "export": "attribution"}).content.decode()
    eur = admin_client.get(url, {**PERIOD, "export": "attribution-eur"}).content.decode()
    assert usd.splitlines()[-1].startswith("Total,,2,,1300.00,")
    assert "Webinar,Webinar,1,1,48000.00" in eur and "Cost" not in eur.splitlines()[0]
    assert eur.splitlines()[-1].startswith("Total,,1,,48000.00,")


def test_only_other_currencies_still_shows_them(org, other_org, admin_client):
    """No USD deal at all: the EUR deal is the report, not "win a deal first"."""
    with tenant_scope(org):
        campaign = CampaignFactory(organization=org, name="Fair")
    _eur_win(org, campaign)
    url = reverse("reports:attribution", kwargs={"org_slug": org.slug})
    page = admin_client.get(url, PERIOD).content.decode()
    assert "No deals won in this period" not in page
    assert "Won revenue (EUR)" in page and "48,000.00" in page
