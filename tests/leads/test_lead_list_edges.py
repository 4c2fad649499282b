"""The lead list's rough edges: the MQL filter's "Any", a filter form that
doesn't repeat the query string, confirmation with the count before marking
every matching lead as junk, and nurture's "Add to list" bulk action."""

import pytest
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from leads.models import Lead, Quality
from nurture.models import ListKind, ListMembership
from tests.factories import LeadFactory, NurtureListFactory

pytestmark = pytest.mark.django_db


def url(name, org):
    return reverse(f"leads:{name}", kwargs={"org_slug": org.slug})


@pytest.fixture
def leads(org, other_org):
    LeadFactory(organization=other_org, email="secret@globex.com", country="DE")
    return [
        LeadFactory(organization=org, email=f"p{n}@initech.com", country="DE" if n else "US")
        for n in range(3)
    ]


def test_mql_filter_says_any(admin_client, org, leads):
    html = admin_client.get(url("lead_list", org)).content.decode()
    mql = html[html.index('name="mql"') : html.index("</select>", html.index('name="mql"'))]
    assert '<option value="" selected>Any</option>' in mql and "Unknown" not in mql
    shown = admin_client.get(url("lead_list", org), {"mql": "false"}).context["page"]
    assert len(list(shown)) == 3


def test_filter_form_targets_the_bare_path(admin_client, org, leads):
    """hx-get="" would GET the current URL (its query included) plus the form's
    values: every submit repeated the filters."""
    html = admin_client.get(url("lead_list", org), {"country": "DE", "q": "p"}).content.decode()
    form = html[html.index('id="lead-filters"') - 200 : html.index('id="lead-filters"') + 400]
    path = url("lead_list", org)
    assert f'hx-get="{path}"' in form and f'action="{path}"' in form


def test_marking_all_matching_as_junk_asks_first_with_the_count(admin_client, org, leads):
    post = {"action": "mark_junk", "select_all": "on", "query": "country=DE"}
    response = admin_client.post(url("lead_bulk", org), post)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="bulk-confirm"' in html and "Mark 2 leads as junk?" in html
    assert 'name="confirmed" value="1"' in html and 'value="country=DE"' in html
    with tenant_scope(org):
        assert not Lead.objects.filter(quality=Quality.JUNK).exists()
    admin_client.post(url("lead_bulk", org), {**post, "confirmed": "1"})
    with tenant_scope(org):
        junk = set(Lead.objects.filter(quality=Quality.JUNK).values_list("email", flat=True))
    assert junk == {"p1@initech.com", "p2@initech.com"}


def test_selected_leads_need_no_confirmation(admin_client, org, leads):
    admin_client.post(url("lead_bulk", org), {"action": "mark_junk", "lead_ids": [leads[0].pk]})
    with tenant_scope(org):
        assert Lead.objects.get(pk=leads[0].pk).quality == Quality.JUNK


def test_add_to_list_bulk_action(admin_client, org, other_org, leads):
    with tenant_scope(org):
        static = NurtureListFactory(organization=org, name="Webinar invitees")
        NurtureListFactory(organization=org, name="Dynamic", kind=ListKind.DYNAMIC)
    with tenant_scope(other_org):
        foreign = NurtureListFactory(organization=other_org, name="Foreign list")
    html = admin_client.get(url("lead_list", org)).content.decode()
    assert '<option value="add_to_list">Add to list…</option>' in html
    assert "Webinar invitees" in html and "Foreign list" not in html and ">Dynamic<" not in html
    response = admin_client.post(
        url("lead_bulk", org),
        {
            "action": "add_to_list",
            "lead_ids": [leads[0].pk, leads[1].pk],
            "nurture_list": static.pk,
        },
        follow=True,
    )
    assert "2 leads added to Webinar invitees." in response.content.decode()
    with tenant_scope(org):
        members = set(ListMembership.objects.values_list("lead_id", flat=True))
    assert members == {leads[0].pk, leads[1].pk}
    # Another organization's list is no choice.
    response = admin_client.post(
        url("lead_bulk", org),
        {"action": "add_to_list", "lead_ids": [leads[2].pk], "nurture_list": foreign.pk},
        follow=True,
    )
    assert "Choose a static list" in response.content.decode()
    with tenant_scope(other_org):
        assert not ListMembership.objects.exists()
