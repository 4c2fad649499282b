"""Lead list / export / bulk / detail / edit pages."""

import csv
import io

import pytest
from django.urls import reverse

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, ActivityKind, Channel, Lead, Quality
from tests.factories import ActivityFactory, CampaignFactory, FormSubmissionFactory, LeadFactory


def url(name, org, **kwargs):
    return reverse(f"leads:{name}", kwargs={"org_slug": org.slug, **kwargs})


@pytest.fixture
def leads(org, other_org):
    LeadFactory(organization=other_org, email="secret@globex.com", last_name="Globexer")
    return [
        LeadFactory(
            organization=org,
            email="ann@initech.com",
            first_name="Ann",
            last_name="Lee",
            country="US",
            first_source=Channel.EVENT,
        ),
        LeadFactory(
            organization=org,
            email="bob@umbrella.com",
            first_name="Bob",
            last_name="Ng",
            country="DE",
            quality=Quality.SUSPECT,
        ),
        LeadFactory(
            organization=org,
            email="cy@hooli.com",
            first_name="Cy",
            last_name="Ito",
            country="DE",
            company_name='=HYPERLINK("x")',
        ),
    ]


@pytest.mark.django_db
def test_list_shows_only_this_orgs_leads(admin_client, org, leads):
    html = admin_client.get(url("lead_list", org)).content.decode()
    assert "ann@initech.com" in html and "bob@umbrella.com" in html
    assert "secret@globex.com" not in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=ann", {"ann@initech.com"}),
        ("q=umbrella", {"bob@umbrella.com"}),
        ("country=Germany", {"bob@umbrella.com", "cy@hooli.com"}),
        ("quality=suspect", {"bob@umbrella.com"}),
        ("source=event", {"ann@initech.com"}),
        ("owner=none", {"ann@initech.com", "bob@umbrella.com", "cy@hooli.com"}),
    ],
)
def test_filters(admin_client, org, leads, query, expected):
    response = admin_client.get(url("lead_list", org) + "?" + query)
    shown = {lead.email for lead in response.context["page"]}
    assert shown == expected


@pytest.mark.django_db
def test_sorting_and_bad_params_never_500(admin_client, org, leads):
    response = admin_client.get(url("lead_list", org) + "?o=name")
    assert [lead.last_name for lead in response.context["page"]] == ["Ito", "Lee", "Ng"]
    response = admin_client.get(url("lead_list", org) + "?o=-name")
    assert [lead.last_name for lead in response.context["page"]] == ["Ng", "Lee", "Ito"]
    for junk in (
        "o=drop+table",
        "page=999",
        "per_page=abc",
        "created_after=not-a-date",
        "campaign=999999",
        "owner=abc",
        "quality=meh",
    ):
        assert admin_client.get(url("lead_list", org) + "?" + junk).status_code == 200, junk


@pytest.mark.django_db
def test_list_query_count_is_constant(admin_client, org, other_org, django_assert_num_queries):
    campaign = CampaignFactory(organization=org)
    LeadFactory.create_batch(3, organization=org, first_campaign=campaign)
    # One page; its rows carry their capped count. Kept: controls and labels (leads.controls).
    admin_client.get(url("lead_list", org))
    # session, user, membership, the rows
    with django_assert_num_queries(4) as first:
        admin_client.get(url("lead_list", org))
    LeadFactory.create_batch(40, organization=org, first_campaign=campaign)
    with django_assert_num_queries(len(first.captured_queries)):
        admin_client.get(url("lead_list", org) + "?per_page=100")


@pytest.mark.django_db
def test_htmx_request_renders_only_the_results(admin_client, org, leads):
    response = admin_client.get(url("lead_list", org) + "?q=ann", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert 'id="results"' in html and "ann@initech.com" in html
    assert "<nav" not in html  # no layout


@pytest.mark.django_db
def test_sales_rep_sees_only_own_leads(client_for, org, sales_rep, leads):
    leads[0].owner = sales_rep
    leads[0].save()
    client = client_for(sales_rep)
    shown = {lead.email for lead in client.get(url("lead_list", org)).context["page"]}
    assert shown == {"ann@initech.com"}
    assert client.get(url("lead_detail", org, lead_id=leads[1].pk)).status_code == 404
    assert client.get(url("lead_detail", org, lead_id=leads[0].pk)).status_code == 200
    assert client.get(url("lead_export", org)).status_code == 403


@pytest.mark.django_db
def test_export_neutralizes_formulas_and_respects_filters(admin_client, org, leads):
    response = admin_client.get(url("lead_export", org) + "?country=DE&o=email")
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:3] == ["id", "email", "external_id"]
    assert [r[1] for r in rows[1:]] == ["bob@umbrella.com", "cy@hooli.com"]
    company = rows[2][7]
    assert company.startswith("'=HYPERLINK")
    assert "secret@globex.com" not in body


@pytest.mark.django_db
def test_bulk_assign_add_campaign_and_mark_junk(admin_client, org, other_org, leads, sales_rep):
    foreign = LeadFactory(organization=other_org)
    campaign = CampaignFactory(organization=org, channel=Channel.WEBINAR)
    ids = [leads[0].pk, leads[1].pk, foreign.pk]
    admin_client.post(
        url("lead_bulk", org), {"action": "assign_owner", "lead_ids": ids, "owner": sales_rep.pk}
    )
    admin_client.post(
        url("lead_bulk", org),
        {"action": "add_to_campaign", "lead_ids": ids, "campaign": campaign.pk},
    )
    admin_client.post(url("lead_bulk", org), {"action": "mark_junk", "lead_ids": [leads[2].pk]})
    with tenant_scope(org):
        a, b, c = (Lead.objects.get(pk=lead.pk) for lead in leads)
        notes = Activity.objects.filter(campaign=campaign).count()
    assert a.owner == sales_rep and b.owner == sales_rep and c.owner is None
    assert a.latest_campaign == campaign and a.latest_source == Channel.WEBINAR
    assert notes == 2
    assert c.quality == Quality.JUNK
    with tenant_scope(other_org):
        foreign.refresh_from_db()
    assert foreign.owner is None and foreign.latest_campaign is None


@pytest.mark.django_db
def test_bulk_select_all_matching_filter(admin_client, org, leads):
    admin_client.post(
        url("lead_bulk", org),
        {"action": "mark_junk", "select_all": "on", "query": "country=DE", "confirmed": "1"},
    )
    with tenant_scope(org):
        junk = set(Lead.objects.filter(quality=Quality.JUNK).values_list("email", flat=True))
    assert junk == {"bob@umbrella.com", "cy@hooli.com"}


@pytest.mark.django_db
def test_bulk_without_selection_is_a_message_not_an_error(admin_client, org, leads):
    response = admin_client.post(url("lead_bulk", org), {"action": "mark_junk"}, follow=True)
    assert "Select at least one lead" in response.content.decode()


@pytest.mark.django_db
def test_detail_shows_timeline_escaped(admin_client, org, leads):
    lead = leads[0]
    ActivityFactory(
        lead=lead,
        kind=ActivityKind.PAGE_VIEW,
        properties={"url": "https://x.example/<script>alert(1)</script>"},
    )
    FormSubmissionFactory(
        form__organization=org, lead=lead, payload={"first_name": "<img src=x onerror=alert(1)>"}
    )
    html = admin_client.get(url("lead_detail", org, lead_id=lead.pk)).content.decode()
    assert "Page view" in html and "Raw submission" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "<img src=x" not in html


@pytest.mark.django_db
def test_edit_normalizes_and_rejects_duplicates(admin_client, org, leads):
    lead = leads[0]
    data = {
        "email": " ANN@Initech.com ",
        "first_name": "ann",
        "last_name": "lee",
        "phone": "+1 (415) 555-2671",
        "country": "United States",
        "company_size": "250",
    }
    response = admin_client.post(url("lead_edit", org, lead_id=lead.pk), data)
    assert response.status_code == 302
    with tenant_scope(org):
        lead.refresh_from_db()
    assert (lead.email, lead.first_name, lead.phone, lead.country, lead.company_size) == (
        "ann@initech.com",
        "Ann",
        "+14155552671",
        "US",
        250,
    )
    taken = admin_client.post(
        url("lead_edit", org, lead_id=lead.pk), {**data, "email": "bob@umbrella.com"}
    )
    assert taken.status_code == 400 and "already uses bob@umbrella.com" in taken.content.decode()
    bad = admin_client.post(url("lead_edit", org, lead_id=lead.pk), {**data, "country": "Atlantis"})
    assert bad.status_code == 400 and "Unknown country" in bad.content.decode()


@pytest.mark.django_db
def test_unicode_and_long_values_render(admin_client, org):
    lead = LeadFactory(organization=org, first_name="José", last_name="李" * 100, title="x" * 200)
    response = admin_client.get(url("lead_detail", org, lead_id=lead.pk))
    assert response.status_code == 200 and "José" in response.content.decode()


@pytest.mark.django_db
def test_marketer_may_edit_sales_rep_may_not(client_for, org, marketer, sales_rep, leads):
    leads[0].owner = sales_rep
    leads[0].save()
    assert client_for(marketer).get(url("lead_edit", org, lead_id=leads[0].pk)).status_code == 200
    assert client_for(sales_rep).get(url("lead_edit", org, lead_id=leads[0].pk)).status_code == 403
    assert Role.SALES_REP  # the fixture really is a rep
