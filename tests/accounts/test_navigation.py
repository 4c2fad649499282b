"""The navigation: a skip link first, and exactly one current section on every
pipeline page (aria-current="page"), for each role that may open the page."""

import re
from html import unescape

import pytest
from django_scopes import scopes_disabled

from accounts.models import Role
from tests import factories as f
from tests.urlwalk import org_routes, sample_values

CURRENT = re.compile(r'<a class="nav-link[^"]*"\s+href="[^"]*"\s+aria-current="page">', re.S)
LABEL = re.compile(r'aria-current="page">\s*<i[^>]*></i>([^<]+)<')

# The section a page belongs to, where its path alone would not say it.
EXPECTED = {
    "pipeline:queue": "My leads",
    "pipeline:lead_touch": "My leads",
    "pipeline:board": "Opportunities",
    "pipeline:opportunity": "Opportunities",
    "pipeline:team": "Team",
    "pipeline:settings": "Routing & SLA",
    "pipeline:webhook_list": "Routing & SLA",
    "pipeline:deal_stages": "Routing & SLA",
}


def _own_samples(org, rep) -> dict:
    """Samples the rep may open: a lead routed to them and their own deal."""
    lead = f.AssignmentFactory(lead__organization=org, membership=rep).lead
    deal = f.OpportunityFactory(lead__organization=org, owner=rep)
    return {"lead_id": lead.pk, "opportunity_id": deal.pk}


def _pages(client, org, rep=None):
    """(view name, HTML) of every pipeline page the client gets as a whole page."""
    pages = []
    for route in org_routes():
        if not route.name.startswith("pipeline:"):
            continue
        with scopes_disabled():
            values = sample_values(route, org)
            if rep is not None:
                values.update({k: v for k, v in _own_samples(org, rep).items() if k in values})
        response = client.get(route.path(org.slug, values))
        if response.status_code == 200 and b"<html" in response.content:
            pages.append((route.name, response.content.decode()))
    return pages


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.ADMIN, Role.SALES_REP])
def test_every_pipeline_page_marks_exactly_one_section_current(
    role, org, other_org, make_member, client_for
):
    f.OpportunityFactory(lead__organization=other_org)  # another tenant's deal is no sample
    member = make_member(org, role)
    pages = _pages(client_for(member), org, member if role == Role.SALES_REP else None)
    # The walk reaches the pages each role works on (the rep: queue, actions, board, deal).
    assert len(pages) >= (20 if role == Role.ADMIN else 8), [name for name, _ in pages]
    seen = set()
    for name, html in pages:
        assert len(CURRENT.findall(html)) == 1, name
        label = unescape(LABEL.search(html).group(1).strip())
        if name in EXPECTED:
            assert label == EXPECTED[name], (name, label)
            seen.add(name)
    rep_pages = {"pipeline:queue", "pipeline:lead_touch", "pipeline:board", "pipeline:opportunity"}
    assert seen == (set(EXPECTED) if role == Role.ADMIN else rep_pages)


@pytest.mark.django_db
def test_nested_sections_mark_only_the_deepest(org, other_org, admin, client_for):
    """/leads/review/ is "Needs review", not also "Leads" (paths nest)."""
    html = client_for(admin).get(f"/o/{org.slug}/leads/review/").content.decode()
    assert len(CURRENT.findall(html)) == 1
    assert LABEL.search(html).group(1).strip() == "Needs review"


@pytest.mark.django_db
def test_skip_link_is_the_first_focusable_element(org, other_org, sales_rep, client_for):
    html = client_for(sales_rep).get(f"/o/{org.slug}/pipeline/").content.decode()
    body = html[html.index("<body") :]
    first = re.search(r"<(a|button|input|select|textarea)\b[^>]*>", body[body.index(">") :])
    assert 'href="#main"' in first.group(0), first.group(0)
    assert "Skip to main content" in body[first.start() : first.start() + 400]
    assert re.search(r'<main id="main"\s+tabindex="-1"', html)
