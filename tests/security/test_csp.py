"""Content-Security-Policy: every page of the URL walk, as every role, in full and
as an htmx fragment, carries the header and has no inline code or style —
the policy forbids them ('unsafe-inline' is never allowed), so any that slips
in would be a page that breaks in the browser."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.test import RequestFactory
from django_scopes import scopes_disabled

from accounts.models import Role
from tests import factories as f
from tests.urlwalk import SAMPLE_OBJECTS, our_routes, request, sample_values

# <script> types the browser never executes (data for scripts, read with JSON.parse).
DATA_SCRIPT_TYPES = {"application/json", "application/ld+json"}


class InlineCodeFinder(HTMLParser):
    """Collects what a strict CSP blocks: inline script bodies, on*= handlers, style=."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._script: dict | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}={value!r}>")
            elif name == "style":
                self.problems.append(f"<{tag} style={value!r}>")
            elif name in ("href", "src", "action") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.problems.append(f"<{tag} {name}={value!r}>")
        if tag == "script":
            self._script = attributes
        elif tag == "style":
            self.problems.append("<style> element")

    def handle_data(self, data):
        script = self._script
        if script is None or not data.strip():
            return
        if "src" not in script and script.get("type", "").lower() not in DATA_SCRIPT_TYPES:
            self.problems.append(f"inline <script>: {data.strip()[:80]!r}")

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None


def inline_code(html: str) -> list[str]:
    finder = InlineCodeFinder()
    finder.feed(html)
    finder.close()
    return finder.problems


def test_the_finder_catches_each_kind_of_inline_code():
    html = """
      <p style="color:red">x</p><button onclick="go()">go</button>
      <script>alert(1)</script><script src="/static/x.js"></script>
      <script type="application/json" id="d">{"a": 1}</script>
      <a href="javascript:void(0)">x</a><style>p{}</style>
      <iframe srcdoc="&lt;p style=&quot;color:red&quot;&gt;email&lt;/p&gt;"></iframe>
    """
    problems = inline_code(html)
    assert len(problems) == 5, problems
    assert inline_code('<script src="/static/a.js"></script><p class="x">ok</p>') == []


def test_the_policy_never_allows_inline_code_or_eval():
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    values = [value for sources in directives.values() for value in sources]
    assert "'unsafe-inline'" not in values and "'unsafe-eval'" not in values
    assert directives["script-src"] == ["'self'"] and directives["style-src"] == ["'self'"]


@pytest.mark.django_db
def test_a_hosted_form_may_send_visitors_to_the_customers_thank_you_page(client, org):
    form = f.CaptureFormFactory(organization=org, redirect_url="https://customer.example/thanks")
    policy = client.get(f"/f/{form.key}/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "form-action" not in policy  # 'self' would block the redirect after the POST


def is_email_document(policy: str) -> bool:
    """An email shown in our preview frames: its own URL answers with the email
    policy (nurture/previews.py), where inline styles are the email's own and
    nothing may run — no script source at all, and a sandbox."""
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    return (
        directives.get("default-src") == ["'none'"]
        and "sandbox" in directives
        and directives.get("sandbox") == []
        and not any(name.startswith("script-src") for name in directives)
        and all("'unsafe-inline'" not in v for k, v in directives.items() if k != "style-src")
    )


def _checked(response, path: str, failures: list[str]) -> None:
    if "Content-Security-Policy" not in response:
        failures.append(f"{path}: no Content-Security-Policy header")
    if response.status_code in range(300, 400) or "text/html" not in response.get(
        "Content-Type", ""
    ):
        return
    problems = inline_code(response.content.decode())
    if is_email_document(response.get("Content-Security-Policy", "")):
        problems = [p for p in problems if " style=" not in p and p != "<style> element"]
    for problem in problems:
        failures.append(f"{path}: {problem}")


def test_only_the_email_policy_lets_an_email_keep_its_inline_styles():
    from csp.utils import build_policy

    from nurture.previews import EMAIL_DOCUMENT_POLICY

    assert is_email_document(build_policy(config=EMAIL_DOCUMENT_POLICY))
    page_policy = build_policy()
    assert not is_email_document(page_policy)
    assert not is_email_document("default-src 'none'; style-src 'unsafe-inline'")  # no sandbox
    assert not is_email_document("default-src 'none'; sandbox; script-src 'self'")
    assert not is_email_document("default-src 'none'; sandbox allow-scripts")


# Pages answered 200 (full + htmx for the admin): proof that the walk saw them.
MIN_PAGES = {Role.ADMIN: 150, Role.MARKETER: 45, Role.SALES_REP: 15, "anonymous": 2}


@pytest.fixture
def public_samples(monkeypatch):
    """Public pages take a key, not an id: the hosted form needs a real one."""
    monkeypatch.setitem(
        SAMPLE_OBJECTS, "form_key", lambda org: f.CaptureFormFactory(organization=org).key
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("public_samples")
@pytest.mark.parametrize("role", [*Role.values, "anonymous"])
def test_every_page_has_the_policy_and_no_inline_code(role, org, other_org, make_member, client):
    if role != "anonymous":
        member = make_member(org, role)
        client.force_login(member.user)
    failures: list[str] = []
    pages = 0
    for route in our_routes():
        if role == "anonymous" and route.is_org:
            continue  # a redirect to the log-in page (tests/test_permissions.py)
        with scopes_disabled():
            values = sample_values(route, org)
        path = route.path(org.slug, values)
        # The full page, and (as the admin, who reaches them all) its htmx fragment.
        for htmx in (False, True) if role == Role.ADMIN else (False,):
            headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
            client.defaults.update(headers)
            response = request(client, route, path)
            client.defaults.pop("HTTP_HX_REQUEST", None)
            _checked(response, path, failures)
            pages += response.status_code == 200
    assert pages >= MIN_PAGES[role]  # the walk really reached the pages
    assert not failures, "\n".join(failures)


EXTRA_PAGES = [
    "/",
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/password/reset/",
    "/api/v1/docs",
    "/no-such-page/",
]
SIGNED_IN_EXTRA_PAGES = [
    "/accounts/2fa/",
    "/accounts/password/change/",
    "/accounts/reauthenticate/",
    "/accounts/email/",
]


@pytest.mark.django_db
def test_allauth_api_docs_and_error_pages_too(client, admin, client_for):
    failures: list[str] = []
    for path in EXTRA_PAGES:
        _checked(client.get(path), path, failures)
    signed_in = client_for(admin)
    for path in SIGNED_IN_EXTRA_PAGES:
        response = signed_in.get(path)
        assert response.status_code == 200, path
        _checked(response, path, failures)
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
def test_the_django_admin_too(client, org):
    staff = f.UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    failures: list[str] = []
    for path in [
        "/admin/",
        "/admin/accounts/organization/",
        f"/admin/accounts/user/{staff.pk}/change/",
    ]:
        response = client.get(path)
        assert response.status_code == 200, path
        _checked(response, path, failures)
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
def test_error_templates_have_no_inline_code(rf: RequestFactory):
    for name in ("403.html", "404.html", "500.html"):
        assert inline_code(render_to_string(name, request=rf.get("/"))) == [], name
