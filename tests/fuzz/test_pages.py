"""Hostile input to every org page of the URL walk, as each role: never a 500,
and an answer that is an error (4xx, a form shown again with errors, or an
error message) leaves every table of our apps exactly as it was.

The fields come from the pages themselves (tests/fuzz/harvest.py): each org
page is rendered once as an admin and every form on it is read, so a new form
is fuzzed without being listed here. Values: tests/fuzz/strategies.py.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.apps import apps
from django.contrib import messages
from django.db import connection, transaction
from django.forms import BaseForm, BaseFormSet
from django.test import Client
from django_scopes import scopes_disabled
from hypothesis import HealthCheck, Phase, given, settings

from accounts.models import Role
from tests.factories import MembershipFactory, OrganizationFactory
from tests.fuzz.harvest import RouteForms, read_forms
from tests.fuzz.strategies import WORST, form_data
from tests.urlwalk import org_routes, sample_values

EXAMPLES_PER_ROLE = 3
FORM_ENCODED = "application/x-www-form-urlencoded"
OUR_APPS = ("accounts", "leads", "scoring", "pipeline", "nurture", "reports", "privacy")
ROUTES = org_routes()


@pytest.fixture(scope="session")
def page_forms(django_db_setup, django_db_blocker) -> dict[str, RouteForms]:
    """Every form of every org page, rendered as an admin (then rolled back)."""
    found: dict[str, RouteForms] = {}
    with (
        django_db_blocker.unblock(),
        transaction.atomic(),
        scopes_disabled(),
    ):
        org = OrganizationFactory(slug="harvest")
        client = Client()
        client.force_login(MembershipFactory(organization=org, role=Role.ADMIN).user)
        for route in ROUTES:
            path = route.path(org.slug, sample_values(route, org))
            response = client.get(path)
            found.setdefault(route.name, RouteForms()).get_status = response.status_code
            if response.status_code == 200 and "html" in response.get("Content-Type", ""):
                read_forms(response.content.decode(), path, found)
        transaction.set_rollback(True)
    return found


def encode(data: dict) -> bytes:
    """application/x-www-form-urlencoded, byte for byte what a hostile client
    can send: lone surrogates become invalid UTF-8, not an encoding error."""
    pairs = []
    for key, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            k = quote(key.encode("utf-8", "surrogatepass"))
            v = quote(item.encode("utf-8", "surrogatepass"))
            pairs.append(f"{k}={v}")
    return "&".join(pairs).encode()


def _tables() -> list[str]:
    return sorted(
        m._meta.db_table
        for m in apps.get_models()
        if m._meta.app_label in OUR_APPS and m._meta.managed and not m._meta.proxy
    )


def table_counts() -> tuple[int, ...]:
    sql = "SELECT " + ", ".join(
        f"(SELECT COUNT(*) FROM {connection.ops.quote_name(t)})" for t in _tables()
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return tuple(cursor.fetchone())


def _forms_in(context) -> list:
    found = []
    for ctx in context or []:
        values = ctx.flatten().values() if hasattr(ctx, "flatten") else ctx.values()
        found += [v for v in values if isinstance(v, BaseForm | BaseFormSet)]
    return found


def is_error(response) -> bool:
    if response.status_code >= 400:
        return True
    if any(f.is_bound and not f.is_valid() for f in _forms_in(response.context)):
        return True
    # Only this request's messages: earlier ones wait in the (unfollowed) redirects.
    queued = getattr(response.wsgi_request, "_messages", None)
    return any(m.level >= messages.ERROR for m in getattr(queued, "_queued_messages", []))


def _methods(forms: RouteForms) -> list[str]:
    """GET when the page takes GET (with the query its forms and links send),
    POST when something posts to it or it takes POST only."""
    methods = []
    if forms.get_status != 405 and (forms.query or not forms.posted_to):
        methods.append("GET")
    if forms.posted_to or forms.get_status == 405:
        methods.append("POST")
    return methods


@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
def test_org_page_survives_hostile_input(route, page_forms, org, other_org, fuzz_stats):
    forms = page_forms[route.name]
    with scopes_disabled():
        values = sample_values(route, org)
        sample_values(route, other_org)  # the other tenant has the same kinds of rows
        members = {role: MembershipFactory(organization=org, role=role) for role in Role}
    path = route.path(org.slug, values)
    fields = {
        "GET": {k: sorted(v) for k, v in forms.query.items()},
        "POST": {k: sorted(v) for k, v in forms.post.items()},
    }
    permission = route.callback.required_permission
    clients = {}
    for role, member in members.items():
        clients[role] = Client()
        clients[role].force_login(member.user)
    # Settings rows stored with their defaults the first time a page reads them
    # (e.g. the pipeline policy) are not a write of the fuzzed input. The page's
    # own forms, rendered for this organization, give current values (ids).
    page = clients[Role.ADMIN].get(path)
    if page.status_code == 200 and "html" in page.get("Content-Type", ""):
        fresh: dict[str, RouteForms] = {}
        read_forms(page.content.decode(), path, fresh)
        own = fresh.get(route.name, RouteForms())
        fields["GET"].update({k: sorted(v) for k, v in own.query.items()})
        fields["POST"].update({k: sorted(v) for k, v in own.post.items()})
    methods = _methods(forms)
    for method in methods:
        free = {k: v for k, v in fields[method].items() if k not in forms.choices}
        _worst_in_each_field(clients[Role.ADMIN], method, path, fields[method], free, fuzz_stats)
    for role, member in members.items():
        # A role without the permission is refused before any input is read.
        examples = EXAMPLES_PER_ROLE if member.has_perm(permission) else 1
        for method in methods:
            _fuzz(clients[role], method, path, fields[method], examples, fuzz_stats)


def _send(client, method: str, path: str, data: dict, stats) -> None:
    before = table_counts()
    stats["fuzz_cases"] += 1
    try:
        if method == "GET":
            response = client.get(path + "?" + encode(data).decode())
        else:
            response = client.post(path, encode(data), content_type=FORM_ENCODED)
    except Exception:
        stats["fuzz_server_errors"] += 1
        raise
    assert response.status_code < 500, (method, path, data)
    if is_error(response) and table_counts() != before:
        stats["fuzz_partial_writes"] += 1
        raise AssertionError(f"{method} {path} failed but wrote rows: {data}")


def _worst_in_each_field(client, method, path, fields: dict, free: dict, stats) -> None:
    """Each free-text field in turn gets each of the WORST values, the others an
    ordinary one (fields with fixed choices get hostile values in the random part)."""
    ordinary = {name: next((v for v in values if v), "") for name, values in fields.items()}
    for name in free:
        for value in WORST:
            _send(client, method, path, {**ordinary, name: value}, stats)


def _fuzz(client, method: str, path: str, fields: dict, examples: int, stats) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time, raw example
        suppress_health_check=list(HealthCheck),
    )
    @given(data=form_data(fields))
    def hostile(data):
        _send(client, method, path, data, stats)

    hostile()
