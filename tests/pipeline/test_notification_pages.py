"""The bell, its panel, the notifications page and the email preferences: each
member sees only their own notices, opening one marks it read and goes to its
page, and the bell's endpoints run a constant number of queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from pipeline.models import Notification, NotificationPreference
from tests.factories import LeadFactory, MembershipFactory
from tests.security.xss import POLYGLOT, find_xss

pytestmark = pytest.mark.django_db


def url(org, name: str, **kwargs) -> str:
    return reverse(f"notifications:{name}", kwargs={"org_slug": org.slug, **kwargs})


def notices(member, n: int, **fields) -> list[Notification]:
    with tenant_scope(member.organization):
        lead = LeadFactory(organization=member.organization)
        return [
            Notification.objects.create(
                organization=member.organization,
                recipient=member,
                lead=lead,
                kind="assigned",
                message=f"New lead {i}",
                link=f"/o/{member.organization.slug}/leads/{lead.pk}/",
                **fields,
            )
            for i in range(n)
        ]


@pytest.fixture
def rep(org, make_member):
    return make_member(org, Role.SALES_REP)


@pytest.fixture
def rep_client(rep, client_for):
    return client_for(rep)


def test_the_bell_counts_only_my_unread_notices_in_this_organization(
    org, other_org, rep, make_member, rep_client
):
    notices(rep, 3)
    notices(rep, 2, read_at=timezone.now())
    notices(make_member(org, Role.SALES_REP), 4)  # a colleague's
    # The same person in another organization.
    notices(MembershipFactory(organization=other_org, user=rep.user, role=Role.SALES_REP), 5)
    response = rep_client.get(url(org, "bell"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-unread="3"' in html and "New lead 2" in html  # the newest, for the desktop


def test_the_bell_is_in_the_top_bar_of_every_organization_page_and_polls(
    org, other_org, rep_client
):
    page = rep_client.get(reverse("pipeline:queue", kwargs={"org_slug": org.slug}))
    html = page.content.decode()
    assert 'data-testid="notification-bell"' in html
    assert f'hx-get="{url(org, "bell")}"' in html and "every 3s" in html
    assert "js/notifications.js" in html
    assert url(org, "preferences") in html  # the user menu links the preferences


@pytest.mark.parametrize("path", ["bell", "panel", "list"])
def test_the_bell_and_its_lists_run_a_constant_number_of_queries(
    org, other_org, rep, rep_client, path
):
    counts = []
    for n in (3, 60):
        with tenant_scope(org):
            Notification.objects.filter(recipient=rep).delete()
        notices(rep, n)
        with CaptureQueriesContext(connection) as queries:
            response = rep_client.get(url(org, path))
        assert response.status_code == 200
        assert f"New lead {n - 1}" in response.content.decode()  # the newest
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    # Pinned: the session, the user, the membership with its organization, then
    # the bell's newest and count; the panel's list; the list's count and page.
    assert counts[0] == {"bell": 5, "panel": 4, "list": 5}[path], counts


def test_opening_a_notice_marks_it_read_and_goes_to_its_page(org, other_org, rep, rep_client):
    first, second = notices(rep, 2)
    response = rep_client.get(url(org, "open", notification_id=first.pk))
    assert response.status_code == 302 and response["Location"] == first.link
    with tenant_scope(org):
        first.refresh_from_db()
        second.refresh_from_db()
    assert first.read_at and second.read_at is None
    assert 'data-unread="1"' in rep_client.get(url(org, "bell")).content.decode()


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", "//evil.example/x", "https://evil.example/"]
)
def test_a_link_that_is_not_a_path_of_this_site_is_never_followed(
    org, other_org, rep, rep_client, link
):
    [notice] = notices(rep, 1)
    with tenant_scope(org):
        Notification.objects.filter(pk=notice.pk).update(link=link)
    response = rep_client.get(url(org, "open", notification_id=notice.pk))
    assert response.status_code == 302 and response["Location"] == url(org, "list")


def test_someone_elses_notice_is_a_404_and_stays_unread(
    org, other_org, rep, make_member, rep_client, client_for
):
    [colleagues] = notices(make_member(org, Role.ADMIN), 1)
    [foreign] = notices(make_member(other_org, Role.ADMIN), 1)
    assert rep_client.get(url(org, "open", notification_id=colleagues.pk)).status_code == 404
    assert rep_client.get(url(org, "open", notification_id=foreign.pk)).status_code == 404
    # Nor through the other organization's slug (the rep is no member there).
    path = url(other_org, "open", notification_id=foreign.pk)
    assert rep_client.get(path).status_code == 404
    with tenant_scope(org):
        assert Notification.objects.get(pk=colleagues.pk).read_at is None


def test_mark_all_read_marks_only_mine(org, other_org, rep, make_member, rep_client):
    notices(rep, 3)
    [colleagues] = notices(make_member(org, Role.SALES_REP), 1)
    response = rep_client.post(url(org, "mark_all_read"))
    assert response.status_code == 302
    with tenant_scope(org):
        assert not Notification.objects.filter(recipient=rep, read_at__isnull=True).exists()
        assert Notification.objects.get(pk=colleagues.pk).read_at is None
    notices(rep, 1)
    htmx = rep_client.post(url(org, "mark_all_read"), HTTP_HX_REQUEST="true")
    assert htmx.status_code == 200 and htmx["HX-Trigger"] == "notifications-changed"
    assert 'data-testid="notification-item"' in htmx.content.decode()
    assert rep_client.get(url(org, "mark_all_read")).status_code == 405


def test_preferences_page_saves_my_choices(org, other_org, rep, rep_client):
    page = rep_client.get(url(org, "preferences"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "A new lead is assigned to me" in html and 'value="digest"' in html
    data = {
        "assigned": "digest",
        "reassigned": "immediate",
        "reassigned_away": "off",
        "sla_at_risk": "immediate",
        "sla_breach": "immediate",
        "sla_escalation": "off",
        "task_due": "digest",
    }
    assert rep_client.post(url(org, "preferences"), data).status_code == 302
    with tenant_scope(org):
        stored = NotificationPreference.objects.get(membership=rep).email
    assert stored == data
    bad = rep_client.post(url(org, "preferences"), {**data, "assigned": "hourly"})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()
    with tenant_scope(org):
        assert NotificationPreference.objects.get(membership=rep).email == data
    with tenant_scope(other_org):
        assert not NotificationPreference.objects.exists()


def test_the_list_page_shows_my_notices_with_links(org, other_org, rep, rep_client):
    [notice] = notices(rep, 1)
    html = rep_client.get(url(org, "list")).content.decode()
    assert "New lead 0" in html and url(org, "open", notification_id=notice.pk) in html


def test_a_hostile_lead_name_in_a_notice_stays_text_in_the_bell_panel_and_list(
    org, other_org, rep, rep_client
):
    [notice] = notices(rep, 1)
    with tenant_scope(org):
        Notification.objects.filter(pk=notice.pk).update(message=f"New lead {POLYGLOT}")
    for name in ("bell", "panel", "list"):
        html = rep_client.get(url(org, name)).content.decode()
        assert escape(POLYGLOT) in html, name  # shown, as text
        assert find_xss(html, where=name) == []
