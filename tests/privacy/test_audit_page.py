"""The audit log page: admins only, the organization's entries newest first,
filtered by action, keyset pages, a fixed number of queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.audit import audit_record
from accounts.models import Role
from privacy.views import PER_PAGE

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(org, other_org, admin):
    for n in range(PER_PAGE + 5):
        audit_record(organization=org, action="lead.merged", actor=admin, label=f"merge {n}")
    audit_record(organization=org, action="lead.erased", label="person abc", data={"n": 1})
    audit_record(organization=other_org, action="lead.erased", label="globex secret")


def test_lists_filters_and_pages(org, admin_client, events, django_assert_max_num_queries):
    url = reverse("audit:log", kwargs={"org_slug": org.slug})
    with django_assert_max_num_queries(12):
        first = admin_client.get(url)
    html = first.content.decode()
    assert first.status_code == 200 and "globex secret" not in html
    assert html.index("person abc") < html.index(f"merge {PER_PAGE + 4}")  # newest first
    assert 'rel="next"' in html and '<option value="lead.erased"' in html
    next_query = html.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = admin_client.get(url + next_query.replace("&amp;", "&")).content.decode()
    assert "merge 0" in second and "person abc" not in second
    only = admin_client.get(url, {"action": "lead.erased"}).content.decode()
    assert "person abc" in only and "merge 1" not in only and "globex secret" not in only
    assert "n 1" in only  # the details read as text, not as a dict's repr


def test_query_count_does_not_grow_with_the_page(
    org, admin, admin_client, events, django_assert_num_queries
):
    url = reverse("audit:log", kwargs={"org_slug": org.slug})
    admin_client.get(url)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(url)
    for n in range(20):
        audit_record(organization=org, action="lead.merged", actor=admin, label=f"more {n}")
    with django_assert_num_queries(len(few.captured_queries)):
        admin_client.get(url)


@pytest.mark.parametrize("role", [Role.MARKETER, Role.SALES_REP])
def test_only_admins(org, other_org, make_member, client_for, role):
    client = client_for(make_member(org, role))
    assert client.get(reverse("audit:log", kwargs={"org_slug": org.slug})).status_code == 403
    assert client.get(reverse("privacy:index", kwargs={"org_slug": org.slug})).status_code == 403
