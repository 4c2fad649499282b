"""A `next` from the request is followed only when it points at this site.

Three layers: the helper itself; a source walk proving every app reads `next`
through leadflow.core.redirects and that every redirect to a computed URL was
reviewed; and a URL walk posting a foreign `next` to every view.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import RequestFactory
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_scopes import scopes_disabled

from leadflow.core.redirects import safe_next
from leadflow.core.tenancy import tenant_scope
from leads.models import Lead, Quality
from tests.factories import LeadFactory
from tests.urlwalk import SAMPLE_OBJECTS, SAMPLE_STRINGS, our_routes, sample_values

EVIL = [
    "https://evil.example/phish",
    "//evil.example/phish",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "https:evil.example",
    "/ok\r\nSet-Cookie: x=1",
    " //evil.example",
]
GOOD = ["/o/acme/leads/review/", "/o/acme/leads/?page=2", "http://testserver/o/acme/"]


@pytest.mark.parametrize("target", EVIL)
def test_foreign_or_malformed_targets_are_dropped(target):
    request = RequestFactory().post("/", {"next": target})
    assert safe_next(request) == ""


@pytest.mark.parametrize("target", GOOD)
def test_own_targets_are_kept(target):
    assert safe_next(RequestFactory().get("/", {"next": target})) == target


# --- The source walk ------------------------------------------------------------------

APPS = ("accounts", "leads", "scoring", "pipeline", "nurture", "reports", "leadflow")
HELPER = Path("leadflow/core/redirects.py")
REDIRECTS = {"redirect", "HttpResponseRedirect", "HttpResponsePermanentRedirect"}
# Redirects to a computed URL, each reviewed: (file, function) -> where the URL comes from.
REVIEWED = {
    ("leadflow/core/redirects.py", "redirect_next"): "safe_next() or the view's own default",
    ("accounts/views.py", "org_home"): "a URL name from the role_home hook (leadflow.core.hooks)",
    ("accounts/two_factor.py", "enforce"): "the URL name of allauth's 2FA set-up page",
    ("leads/views/leads.py", "lead_bulk"): "reverse() of the lead list plus a query string",
    ("leads/views/capture.py", "_success"): "the capture form's thank-you URL its admin set",
    ("nurture/views_public.py", "track_click"): "a link of the sent email, named by a signed token",
    ("reports/views/digest.py", "digest_toggle"): "safe_next()",
    ("pipeline/views/notifications.py", "notification_open"): (
        "safe_next() of the notice's own link (a path of this site) or the list"
    ),
}


def _sources():
    root = Path(settings.BASE_DIR)
    for app in APPS:
        for path in sorted((root / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path.relative_to(root), ast.parse(path.read_text(), str(path))


def _functions(tree):
    """(node, enclosing function name) for every node."""
    stack = [(tree, "<module>")]
    while stack:
        node, name = stack.pop()
        for child in ast.iter_child_nodes(node):
            is_function = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            inner = child.name if is_function else name
            yield child, inner
            stack.append((child, inner))


def _is_literal_url_name(arg) -> bool:
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return True
    if isinstance(arg, ast.JoinedStr):  # f"nurture:{name}": a URL name
        head = arg.values[0]
        return isinstance(head, ast.Constant) and ":" in head.value
    return isinstance(arg, ast.Call) and getattr(arg.func, "id", "") == "reverse"


def test_next_is_read_only_through_the_helper():
    readers = []
    for path, tree in _sources():
        if path == HELPER:
            continue
        for node, func in _functions(tree):
            # request.GET.get("next"), request.POST["next"], data.getlist("next") ...
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                keys = node.args[:1]
            elif isinstance(node, ast.Subscript):
                keys = [node.slice]
            else:
                continue
            if any(isinstance(k, ast.Constant) and k.value == "next" for k in keys):
                readers.append(f"{path}:{node.lineno} in {func}")
    assert readers == [], "read `next` with leadflow.core.redirects.safe_next/redirect_next"


def test_every_redirect_to_a_computed_url_was_reviewed():
    seen, unreviewed = set(), []
    for path, tree in _sources():
        for node, func in _functions(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name not in REDIRECTS or not node.args or _is_literal_url_name(node.args[0]):
                continue
            key = (str(path), func)
            seen.add(key)
            if key not in REVIEWED:
                unreviewed.append(f"{path}:{node.lineno} in {func}")
    assert unreviewed == []
    assert seen == set(REVIEWED), "a reviewed redirect is gone: drop it from REVIEWED"


# --- The URL walk ---------------------------------------------------------------------

NEXT_INPUT = re.compile(r'name="next"\s+value="([^"]*)"|value="([^"]*)"\s+name="next"')


def _on_site(url: str) -> bool:
    url = url.replace("&amp;", "&")
    return url_has_allowed_host_and_scheme(url, allowed_hosts={"testserver"})


@pytest.mark.django_db
def test_no_view_follows_or_carries_a_foreign_next(org, other_org, admin, admin_client):
    walked = 0
    for route in our_routes():
        if not route.is_org and set(route.params) - set(SAMPLE_OBJECTS) - set(SAMPLE_STRINGS):
            continue  # public pages keyed by an unguessable key: none reads `next`
        with scopes_disabled():
            values = sample_values(route, org)
        path = route.path(org.slug, values)
        for target in ("https://evil.example/x", "//evil.example/x"):
            response = admin_client.get(path, {"next": target})
            if response.status_code == 405:
                response = admin_client.post(path, {"next": target})
            location = response.get("Location", "")
            assert not location or _on_site(location), (route.route, location)
            if response.get("Content-Type", "").startswith("text/html"):
                carried = [a or b for a, b in NEXT_INPUT.findall(response.content.decode())]
                assert all(_on_site(url) for url in carried if url), (route.route, carried)
            walked += 1
    assert walked > 100


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["lead_approve", "lead_discard"])
def test_review_actions_ignore_a_foreign_next(admin_client, org, other_org, action):
    lead = LeadFactory(organization=org, quality=Quality.SUSPECT)
    LeadFactory(organization=other_org, quality=Quality.SUSPECT)
    url = reverse(f"leads:{action}", kwargs={"org_slug": org.slug, "lead_id": lead.pk})
    review = reverse("leads:review_list", kwargs={"org_slug": org.slug})
    response = admin_client.post(url, {"next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == review
    with tenant_scope(org):
        lead = Lead.objects.get(pk=lead.pk)
    assert lead.reviewed_at is not None or lead.discarded_at is not None
    # A next of our own still works (the lead page sends its own path).
    own = f"/o/{org.slug}/leads/{lead.pk}/"
    response = admin_client.post(url, {"next": own})
    assert response["Location"] == own
