"""The lead list at scale: keyset pages (leadflow/core/pagination.py) and a count
capped at LEAD_COUNT_CAP, so no page view counts or skips the whole tenant; the
page says "Showing 1–25 of 30+", and "all matching" bulk actions still reach
every matching lead. Query counts of the list, searches and detail are pinned
at two sizes."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from leadflow.core.pagination import keyset_page
from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from leads.views import leads as lead_views
from tests.factories import CompanyFactory, LeadFactory, NurtureListFactory


def url(org, name="lead_list", **kwargs):
    return reverse(f"leads:{name}", kwargs={"org_slug": org.slug, **kwargs})


def make_leads(org, n, **fields):
    return LeadFactory.create_batch(n, organization=org, **fields)


def walk(queryset, per_page):
    """Every page forwards, then backwards from the last one; both as lists of pks."""
    forwards, pages = [], []
    page = keyset_page(queryset, per_page=per_page)
    while True:
        pages.append(page)
        forwards.append([lead.pk for lead in page])
        if not page.has_next:
            break
        page = keyset_page(queryset, per_page=per_page, cursor=page.next_cursor)
    backwards = [[lead.pk for lead in page]]
    while page.has_previous:
        page = keyset_page(queryset, per_page=per_page, cursor=page.previous_cursor)
        backwards.append([lead.pk for lead in page])
    return forwards, backwards[::-1], pages


def largest_null(value, descending):
    """A sort key with NULL as the largest value, as the pagination promises."""
    return (value is None, value) if value is not None else (True, 0)


@pytest.fixture
def tied_leads(org, other_org):
    """23 leads whose sort keys tie in groups, some without a last activity."""
    make_leads(other_org, 5)
    now = timezone.now().replace(microsecond=0)
    leads = make_leads(org, 23)
    with tenant_scope(org):
        for n, lead in enumerate(leads):
            Lead.objects.filter(pk=lead.pk).update(
                created_at=now - timedelta(minutes=n // 4),  # four at a time
                last_name=["Ng", "Lee", "Ito"][n % 3],
                last_activity_at=None if n % 4 == 0 else now - timedelta(hours=n % 5),
            )
    return leads


@pytest.mark.django_db
@pytest.mark.parametrize(
    "ordering",
    [["-created_at"], ["created_at"], ["last_name"], ["-last_name", "created_at"],
     ["last_activity_at"], ["-last_activity_at"]],
)  # fmt: skip
def test_keyset_pages_cover_every_lead_once_in_order_both_ways(org, tied_leads, ordering):
    with tenant_scope(org):
        queryset = Lead.objects.order_by(*ordering)
        rows = list(Lead.objects.all())
        forwards, backwards, pages = walk(queryset, per_page=5)
    # The expected order, computed here: NULL largest, the id breaking ties.
    expected = rows
    tie_descending = ordering[-1].startswith("-")
    expected.sort(key=lambda lead: lead.pk, reverse=tie_descending)
    for item in reversed(ordering):
        name = item.lstrip("-")
        expected.sort(
            key=lambda lead, name=name: largest_null(getattr(lead, name), False),
            reverse=item.startswith("-"),
        )
    assert [pk for page in forwards for pk in page] == [lead.pk for lead in expected]
    assert backwards == forwards
    assert [len(page) for page in forwards] == [5, 5, 5, 5, 3]
    assert [(p.start_index, p.end_index) for p in pages] == [
        (1, 5), (6, 10), (11, 15), (16, 20), (21, 23),
    ]  # fmt: skip
    assert {p.count for p in pages} == {23} and not any(p.capped for p in pages)


@pytest.mark.django_db
def test_count_is_capped_and_exact_below_the_cap(org, other_org):
    make_leads(org, 12)
    make_leads(other_org, 20)
    with tenant_scope(org):
        capped = keyset_page(Lead.objects.order_by("-created_at"), per_page=5, cap=10)
        exact = keyset_page(Lead.objects.order_by("-created_at"), per_page=5, cap=12)
    assert (capped.count, capped.capped, capped.count_display) == (10, True, "10+")
    assert (exact.count, exact.capped, exact.count_display) == (12, False, "12")


@pytest.mark.django_db
@pytest.mark.parametrize("cursor", ["garbage", "eyJvIjoiLWNyZWF0ZWRfYXQifQ", "", "%%%", "e30"])
def test_a_bad_cursor_shows_the_first_page(admin_client, org, other_org, cursor):
    leads = make_leads(org, 3)
    response = admin_client.get(url(org), {"cursor": cursor})
    assert response.status_code == 200
    assert {lead.pk for lead in response.context["page"]} == {lead.pk for lead in leads}


@pytest.mark.django_db
def test_a_cursor_of_another_sort_order_starts_that_order_from_the_top(
    admin_client, org, other_org
):
    make_leads(org, 30)
    first = admin_client.get(url(org), {"per_page": 25})
    cursor = first.context["page"].next_cursor
    by_name = admin_client.get(url(org), {"per_page": 25, "o": "name", "cursor": cursor})
    assert by_name.context["page"].start_index == 1


def links(html):
    return {
        rel: unescape(href) for href, rel in re.findall(r'href="([^"]*)" rel="(next|prev)"', html)
    }


@pytest.mark.django_db
def test_list_pages_through_next_and_previous_with_a_capped_count(
    admin_client, org, other_org, monkeypatch
):
    monkeypatch.setattr(lead_views, "LEAD_COUNT_CAP", 30)
    make_leads(other_org, 40)
    make_leads(org, 60, country="FR")
    make_leads(org, 3, country="DE")
    first = admin_client.get(url(org), {"per_page": 25, "country": "FR"})
    html = first.content.decode()
    assert "Showing 1–25 of 30+" in html
    assert "All 30+ matching" in html
    assert 'rel="prev"' not in html
    second = admin_client.get(url(org) + links(html)["next"])
    html2 = second.content.decode()
    assert "Showing 26–50 of more than 50" in html2  # past the cap
    assert "All 30+ matching" in html2
    assert "country=FR" in links(html2)["next"] and "per_page=25" in links(html2)["next"]
    third = admin_client.get(url(org) + links(html2)["next"])
    html3 = third.content.decode()
    assert "Showing 51–60 of 30+" not in html3 and "Showing 51–60 of 60" in html3
    assert "next" not in links(html3)
    back = admin_client.get(url(org) + links(html3)["prev"])
    assert [lead.pk for lead in back.context["page"]] == [
        lead.pk for lead in second.context["page"]
    ]
    seen = [lead.pk for r in (first, second, third) for lead in r.context["page"]]
    assert len(seen) == len(set(seen)) == 60
    # A small filter is counted exactly.
    small = admin_client.get(url(org), {"country": "DE"}).content.decode()
    assert "Showing 1–3 of 3" in small and "All 3 matching" in small


@pytest.mark.django_db
def test_bulk_action_on_all_matching_reaches_past_the_capped_count(
    admin_client, org, other_org, monkeypatch
):
    monkeypatch.setattr(lead_views, "LEAD_COUNT_CAP", 10)
    make_leads(org, 40, country="FR")
    make_leads(org, 2, country="DE")
    make_leads(other_org, 5, country="FR")
    response = admin_client.post(
        url(org, "lead_bulk"),
        {
            "action": "mark_junk",
            "select_all": "on",
            "query": "country=FR&cursor=abc",
            "confirmed": "1",
        },
    )
    assert response.status_code == 302
    with tenant_scope(org):
        assert Lead.objects.filter(country="FR", quality="junk").count() == 40
        assert Lead.objects.filter(country="DE", quality="junk").count() == 0
    with tenant_scope(other_org):
        assert Lead.objects.filter(quality="junk").count() == 0


PAGES = {
    "list": {},
    "search with matches": {"q": "match"},
    "search without matches": {"q": "nothing-is-called-this"},
    "next page": "next",
}


def page_queries(client, org, lead):
    """Query count of each page the benchmark measures, at the tenant's size."""
    counts = {}
    client.get(url(org, "lead_detail", lead_id=lead.pk))  # first-visit writes out of the way
    for name, params in PAGES.items():
        if params == "next":
            first = client.get(url(org), {"per_page": 25})
            params = {"per_page": 25, "cursor": first.context["page"].next_cursor}
        client.get(url(org), params)  # its controls and labels kept (leads.controls)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url(org), params).status_code == 200
        counts[name] = len(captured.captured_queries)
    with CaptureQueriesContext(connection) as captured:
        client.get(url(org, "lead_detail", lead_id=lead.pk))
    counts["detail"] = len(captured.captured_queries)
    return counts


@pytest.mark.django_db
def test_query_counts_are_pinned_and_the_same_at_two_sizes(admin_client, org, other_org):
    make_leads(other_org, 5, last_name="Match")
    lead = make_leads(org, 60, last_name="Match")[0]
    make_leads(org, 30)
    small = page_queries(admin_client, org, lead)
    make_leads(org, 60, last_name="Match")
    large = page_queries(admin_client, org, lead)
    assert small == large
    assert small["list"] == small["next page"] == small["search with matches"]
    # Pinned, with the list's controls and labels kept: session, user, membership,
    # and the rows carrying their capped count.
    assert small == {
        "list": 4,
        "search with matches": 4,
        "search without matches": 4,
        "next page": 4,
        "detail": 16,  # + the lead's tasks and the admin's privacy panel
    }


@pytest.mark.django_db
def test_company_list_pages_by_keyset_and_counts_leads_of_the_page_only(
    admin_client, org, other_org
):
    # The list sorts by name: the company with leads gets a name that sorts first,
    # so it is on the first page whatever names the factory makes up.
    companies = [
        CompanyFactory(organization=org, name="0000 Anchor Co"),
        *CompanyFactory.create_batch(59, organization=org),
    ]
    LeadFactory.create_batch(3, organization=org, company=companies[0])
    CompanyFactory.create_batch(5, organization=other_org)
    first = admin_client.get(url(org, "company_list"))
    html = first.content.decode()
    assert "Showing 1–50 of 60" in html
    with CaptureQueriesContext(connection) as captured:
        second = admin_client.get(url(org, "company_list") + links(html)["next"])
    assert "Showing 51–60 of 60" in second.content.decode()
    shown = [c.pk for r in (first, second) for c in r.context["page"]]
    assert sorted(shown) == sorted(c.pk for c in companies)
    counts = {c.pk: c.lead_count for c in first.context["page"]}
    assert counts[companies[0].pk] == 3 and sum(counts.values()) == 3
    # The lead counts ride on the page query (a correlated subquery per company
    # shown); the last page needs no count: the rows of the page, nothing more.
    company_queries = [q["sql"] for q in captured.captured_queries if "leads_company" in q["sql"]]
    assert len(company_queries) == 1 and "LIMIT 51" in company_queries[0]


@pytest.mark.django_db
def test_nurture_list_members_page_by_keyset(admin_client, org, other_org):
    from nurture.services import lists as list_services

    members = make_leads(org, 55)
    make_leads(other_org, 3)
    with tenant_scope(org):
        nurture_list = NurtureListFactory(organization=org)
        list_services.list_add_leads(nurture_list=nurture_list, lead_ids=[x.pk for x in members])
    path = reverse("nurture:list_detail", kwargs={"org_slug": org.slug, "list_id": nurture_list.pk})
    first = admin_client.get(path)
    html = first.content.decode()
    assert "Showing 1–50 of 55" in html
    second = admin_client.get(path + links(html)["next"])
    assert "Showing 51–55 of 55" in second.content.decode()
    shown = [m.lead_id for r in (first, second) for m in r.context["page"]]
    assert sorted(shown) == sorted(lead.pk for lead in members)


@pytest.mark.django_db
def test_review_counts_are_capped_per_quality(org, other_org):
    from leads import selectors

    make_leads(org, 3)
    make_leads(org, 2, quality="junk")
    make_leads(other_org, 4, quality="suspect")
    with tenant_scope(org):
        assert selectors.lead_count_by_quality(cap=2) == {"ok": "2+", "suspect": "0", "junk": "2"}


@pytest.mark.django_db
def test_review_queue_pages_by_keyset(admin_client, org, other_org):
    flagged = make_leads(org, 55, quality="suspect")
    make_leads(other_org, 3, quality="junk")
    first = admin_client.get(url(org, "review_list"))
    html = first.content.decode()
    assert "Showing 1–50 of 55" in html
    second = admin_client.get(url(org, "review_list") + links(html)["next"])
    shown = [lead.pk for r in (first, second) for lead in r.context["page"]]
    assert sorted(shown) == sorted(lead.pk for lead in flagged)


@pytest.mark.django_db
def test_a_filter_nothing_can_match_is_an_empty_page_not_an_error(org):
    with tenant_scope(org):
        LeadFactory(organization=org)
        page = keyset_page(Lead.objects.filter(pk__in=[]).order_by("-created_at"), per_page=10)
    assert list(page) == [] and page.count == 0


@pytest.mark.django_db
def test_the_lists_optional_context_is_usable_after_the_response(admin_client, org):
    # Built only if printed (leads.views.leads.lead_list): a test or a tool reading
    # the context afterwards still gets them, inside the organization's scope.
    response = admin_client.get(url(org))
    response = admin_client.get(url(org))  # controls kept: nothing built during it
    assert response.context["bulk_form"].fields["campaign"].queryset.count() == 0
    assert response.context["filter"].form.is_bound
