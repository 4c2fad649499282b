"""The top bar's organization switcher is kept per user in the shared cache: a
page costs no query for it, every change of a membership or of an
organization's name or slug is seen on the next page, and a cache outage costs
the query, never the page."""

import ast
from pathlib import Path
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import services
from accounts.models import Membership, Role
from accounts.switcher import _key, switcher_entries
from tests.factories import InvitationFactory, MembershipFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "leads", "scoring", "pipeline", "nurture", "reports", "privacy", "leadflow")
SWITCHER_QUERY = 'ORDER BY "accounts_organization"."name"'


def shown(membership) -> list[tuple[str, str, str]]:
    """What the switcher offers the member: (name, slug, role), warming the cache."""
    return [(e.name, e.slug, e.role_label) for e in switcher_entries(user=membership.user)]


@pytest.fixture
def two_seats(admin, other_org):
    """The admin of Acme is also a marketer in Globex."""
    MembershipFactory(organization=other_org, user=admin.user, role=Role.MARKETER)
    return admin


def test_a_page_costs_no_query_for_the_switcher_once_it_is_cached(
    two_seats, org, other_org, client_for
):
    client = client_for(two_seats)
    home = reverse("accounts:org_home", kwargs={"org_slug": org.slug})
    client.get(home)
    with CaptureQueriesContext(connection) as queries:
        html = client.get(home).content.decode()
    assert not [q["sql"] for q in queries if SWITCHER_QUERY in q["sql"]]
    # Both organizations are offered, the current one marked.
    assert f'href="/o/{other_org.slug}/"' in html and ">Globex</span>" in html
    assert "active" in html.split(f'href="/o/{org.slug}/"')[0].rsplit("<a", 1)[1]


def test_each_user_has_their_own_entries(two_seats, other_admin):
    assert shown(two_seats) == [("Acme", "acme", "Admin"), ("Globex", "globex", "Marketer")]
    assert shown(other_admin) == [("Globex", "globex", "Admin")]


def test_joining_changing_role_and_leaving_are_seen_at_once(admin, other_org, other_admin):
    assert shown(admin) == [("Acme", "acme", "Admin")]
    invitation = InvitationFactory(
        organization=other_org, email=admin.user.email, role=Role.SALES_REP
    )
    services.invitation_accept(invitation=invitation, user=admin.user)
    assert shown(admin) == [("Acme", "acme", "Admin"), ("Globex", "globex", "Sales rep")]
    seat = Membership.objects.get(organization=other_org, user=admin.user)
    services.membership_change_role(membership=seat, role=Role.MARKETER)
    assert shown(admin)[1] == ("Globex", "globex", "Marketer")
    services.membership_set_active(membership=seat, active=False)
    assert shown(admin) == [("Acme", "acme", "Admin")]
    services.membership_set_active(membership=seat, active=True)
    assert len(shown(admin)) == 2
    seat.delete()
    assert shown(admin) == [("Acme", "acme", "Admin")]
    assert shown(other_admin) == [("Globex", "globex", "Admin")]  # untouched throughout


def test_renaming_an_organization_is_seen_by_every_member(two_seats, org, other_org, other_admin):
    assert shown(other_admin) == [("Globex", "globex", "Admin")]
    assert shown(two_seats)[1][0] == "Globex"
    services.organization_update(organization=other_org, name="Globex Corp", timezone_name="UTC")
    assert shown(other_admin) == [("Globex Corp", "globex", "Admin")]
    assert shown(two_seats) == [("Acme", "acme", "Admin"), ("Globex Corp", "globex", "Marketer")]
    other_org.slug = "globex-corp"
    other_org.save(update_fields=["slug"])
    assert shown(other_admin) == [("Globex Corp", "globex-corp", "Admin")]


def test_deleting_an_organization_forgets_its_seats(two_seats, other_org, make_member):
    colleague = make_member(other_org, Role.SALES_REP)
    assert len(shown(two_seats)) == 2 and len(shown(colleague)) == 1
    other_org.delete()
    assert shown(two_seats) == [("Acme", "acme", "Admin")]
    assert shown(colleague) == []


def test_a_stale_read_stored_before_the_commit_is_forgotten_on_commit(
    two_seats, other_org, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.organization_update(organization=other_org, name="Initech", timezone_name="UTC")
        # Another request read the entries before this commit and stores them now.
        cache.set(_key(two_seats.user_id), [(other_org.pk, "globex", "Globex", "marketer")])
    assert shown(two_seats) == [("Acme", "acme", "Admin"), ("Initech", "globex", "Marketer")]


def test_a_cache_outage_costs_the_query_not_the_page(two_seats, org, client_for):
    home = reverse("accounts:org_home", kwargs={"org_slug": org.slug})
    with mock.patch("leadflow.core.orgfacts.cache") as down:  # where switcher keeps it
        down.get.side_effect = ConnectionError("refused")
        assert [e.name for e in switcher_entries(user=two_seats.user)] == ["Acme", "Globex"]
        page = client_for(two_seats).get(home)
        assert page.status_code == 200 and ">Globex</span>" in page.content.decode()
        down.get.side_effect, down.get.return_value = None, None
        down.set.side_effect = ConnectionError("refused")
        assert len(switcher_entries(user=two_seats.user)) == 2
        down.delete_many.side_effect = ConnectionError("refused")
        services.membership_change_role(
            membership=Membership.objects.get(user=two_seats.user, role=Role.MARKETER),
            role=Role.SALES_REP,
        )


def test_no_bulk_write_of_memberships_or_organizations_skips_the_forgetting():
    """Queryset update() and bulk writes send no signal: the switcher would keep
    what they changed. None of the apps' code writes these two models that way."""
    found = []
    for package in APPS:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if _bulk_write_of(node, {"Membership", "Organization"}):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def _bulk_write_of(node, models: set[str]) -> bool:
    """`Model.objects....update(...)` (or bulk_update/bulk_create) on one of `models`."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return False
    if node.func.attr not in {"update", "bulk_update", "bulk_create"}:
        return False
    receiver = node.func.value
    while isinstance(receiver, ast.Call | ast.Attribute):
        if isinstance(receiver, ast.Attribute) and receiver.attr == "objects":
            return isinstance(receiver.value, ast.Name) and receiver.value.id in models
        receiver = receiver.func if isinstance(receiver, ast.Call) else receiver.value
    return False
