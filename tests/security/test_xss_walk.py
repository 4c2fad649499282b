"""The XSS walk: every user-controlled text field of every tenant model holds a
payload (tests/security/world.py finds the fields), then every page of the URL
walk is rendered as each role (and as an htmx request), with the public pages,
the template preview and the composed emails — and no payload may have become
markup anywhere (tests/security/xss.py parses the HTML, srcdoc included)."""

from __future__ import annotations

import html as html_lib
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest
from django.db import models
from django.urls import reverse
from django_scopes import scopes_disabled

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from nurture.rendering import MERGE_FIELDS
from tests.security.world import (
    NOT_USER_TEXT,
    empty_models,
    hostile_fields,
    label,
    poison,
    populate,
    tenant_models,
)
from tests.security.xss import MARK, POLYGLOT, find_xss, frame_documents
from tests.urlwalk import our_routes

pytestmark = pytest.mark.django_db

# Models with no row in the walk's organization, and why.
NOT_POPULATED: dict[str, str] = {
    "ApiIdempotencyKey": "never on a page: replayed only as the API's own JSON answer",
    "TrainingLead": "two ids (version, lead) and no text",
    "SlaDayRollup": "a day, two ids and counts: no text",
    "VelocityRollup": "a day, a measure key the code sets, a bucket and a count: no text",
}


def test_the_walk_finds_the_user_controlled_fields_by_itself():
    found = {label(m, fld.name) for m in tenant_models() for fld in hostile_fields(m)}
    expected = {
        "accounts.User.full_name", "accounts.Organization.name", "accounts.ApiKey.name",
        "leads.Lead.first_name", "leads.Lead.custom", "leads.Company.name",
        "leads.Campaign.name", "leads.CaptureForm.name", "leads.CaptureFormField.label",
        "leads.CaptureFormField.options", "leads.Activity.properties",
        "scoring.ScoringRule.name", "pipeline.Team.name", "pipeline.WebhookEndpoint.url",
        "pipeline.WebhookEndpoint.description", "nurture.NurtureList.name",
        "nurture.Sequence.name", "nurture.EmailTemplate.body_html", "nurture.EmailTemplate.name",
    }  # fmt: skip
    assert expected <= found, expected - found
    # Every exception names a real text field (none left behind by a rename).
    text_fields = {
        label(m, fld.name)
        for m in tenant_models()
        for fld in m._meta.concrete_fields
        if isinstance(fld, models.CharField | models.TextField | models.JSONField)
    }
    assert set(NOT_USER_TEXT) <= text_fields, set(NOT_USER_TEXT) - text_fields


@pytest.fixture
def world(org, other_org, make_member):
    members = {role: make_member(org, role) for role in Role.values}
    make_member(other_org, Role.ADMIN)
    with scopes_disabled():
        world = populate(org, members)
        assert sorted(empty_models(org)) == sorted(NOT_POPULATED)
        poison(world)
    return world


# Query parameters many pages read, besides the fields of their GET forms.
COMMON_QUERY = frozenset({"q", "status", "page", "sort", "o", "kind", "stage", "tab", "next"})


class _GetFormFields(HTMLParser):
    """The names of the fields a page sends with GET: its GET forms' fields and
    the inputs htmx sends on their own (live search boxes)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self._in_get_form = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._in_get_form = (attrs.get("method") or "get").lower() == "get"
        elif tag in ("input", "select", "textarea"):
            sent_with_get = self._in_get_form or "hx-get" in attrs
            if sent_with_get and attrs.get("name"):
                self.names.add(attrs["name"])

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_get_form = False


def get_form_fields(page: str) -> set[str]:
    parser = _GetFormFields()
    parser.feed(page)
    return parser.names


def _html(response) -> str | None:
    if response.streaming or not response.get("Content-Type", "").startswith("text/html"):
        return None
    return response.content.decode()


def test_every_page_escapes_every_stored_field(world, client_for, client):
    """Every page of the URL walk as each role and anonymously; as the admin
    also as an htmx request and with its query parameters set to a payload."""
    problems, pages, echoed = [], 0, 0
    org = world.org
    clients = {role: client_for(member) for role, member in world.members.items()}
    for who, browser in {**clients, "anonymous": client}.items():
        for route in our_routes():
            values = dict(world.values, token=world.tokens.get(route.name, "bogus-token"))
            path = route.path(org.slug, values)
            variants = [(path, {})]
            if who == Role.ADMIN:
                variants.append((path, {"HTTP_HX_REQUEST": "true"}))
            for url, headers in variants:
                response = browser.get(url, **headers)
                assert response.status_code < 500, (who, url)
                if response.status_code != 200 or (page := _html(response)) is None:
                    continue
                pages += 1
                problems += find_xss(page, where=f"{who} {url}")
                if who == Role.ADMIN and not headers:
                    # What a page echoes back from its query string is escaped too.
                    names = sorted(get_form_fields(page) | COMMON_QUERY)
                    url = f"{path}?{urlencode(dict.fromkeys(names, POLYGLOT))}"
                    response = browser.get(url)
                    assert response.status_code < 500, url
                    if (page := _html(response)) is not None:
                        echoed += 1
                        problems += find_xss(page, where=f"{who} {url}")
    assert problems == []
    assert pages > 150  # the walk really rendered pages
    assert echoed > 50  # and pages with a hostile query string


def test_public_pages_after_posting_escape_every_stored_field(world, client):
    """The thank-you page of the hosted form and the unsubscribe confirmation."""
    form = world.form
    type(form)._base_manager.filter(pk=form.pk).update(redirect_url="")
    thanks = client.post(f"/f/{form.key}/", {"email": "visitor@prospect.example"})
    done = client.post(f"/e/u/{world.tokens['nurture_public:unsubscribe']}/", {"reason": "other"})
    confirmed = client.post(f"/c/{world.tokens['leads:consent_confirm']}/")
    for response in (thanks, done, confirmed):
        assert response.status_code == 200
        page = response.content.decode()
        assert find_xss(page, where=response.wsgi_request.path) == []
        assert html_lib.escape(POLYGLOT) in page  # a stored payload is on the page, as text


def test_template_preview_escapes_every_merge_field_and_template_text(world, client_for):
    """The editor's htmx preview of a template that puts every merge field in
    text and in attributes, for the poisoned lead, plus the stored template."""
    merge = "".join(
        f'<p title="{{{{ {name} }}}}"><a href="{{{{ {name} }}}}">{{{{ {name} }}}}</a>'
        f'<img src="{{{{ {name} }}}}" alt="{{{{ {name} }}}}"></p>'
        for name in MERGE_FIELDS
    )
    client = client_for(world.members[Role.MARKETER])
    path = reverse("nurture:template_preview", kwargs={"org_slug": world.org.slug})
    template = world.template
    for subject, body, text in (
        (" ".join(f"{{{{ {n} }}}}" for n in MERGE_FIELDS), merge, ""),
        (template.subject, template.body_html, template.body_text),
    ):
        data = {"subject": subject, "body_html": body, "body_text": text, "lead": world.lead.pk}
        response = client.post(path, data, HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        page = response.content.decode()
        assert find_xss(page, where="preview") == []
        assert html_lib.escape(POLYGLOT) in page
        (document,) = frame_documents(client, page)  # the draft, by the frame's URL
        assert find_xss(document, where="preview frame") == []
        assert html_lib.escape(POLYGLOT) in document


def test_sent_emails_escape_every_merge_field(
    world, admin_client, mailoutbox, django_capture_on_commit_callbacks
):
    """The emails as sent (the poisoned stored template, and one with every merge
    field in text and in attributes), then the outbox's page of each message."""
    from nurture import services
    from nurture.services.dispatch import template_test_send

    org, lead = world.org, world.lead
    merge = "".join(
        f'<p><a href="{{{{ {name} }}}}">{{{{ {name} }}}}</a> <img src="{{{{ {name} }}}}"></p>'
        for name in MERGE_FIELDS
    )
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        every_field = services.template_save(
            data={"name": "Every field", "subject": "{{ first_name }}", "body_html": merge},
            organization_id=org.pk,
        )
        messages = [
            template_test_send(template=t, to_email="me@acme.example", lead=lead)
            for t in (world.template, every_field)
        ]
    assert len(mailoutbox) == 2
    for email, message in zip(mailoutbox, messages, strict=True):
        ((html, mimetype),) = email.alternatives
        assert mimetype == "text/html"
        assert find_xss(html, where="sent html") == [], html
        assert POLYGLOT in email.body  # the text part is plain text: verbatim, not markup
        path = reverse(
            "nurture:message_detail", kwargs={"org_slug": org.slug, "message_id": message.pk}
        )
        page = admin_client.get(path).content.decode()
        assert find_xss(page, where=path) == []
        assert html_lib.escape(POLYGLOT) in page
        (document,) = frame_documents(admin_client, page)  # the email as sent, by its URL
        assert find_xss(document, where=f"{path} frame") == []
        assert MARK in document


def test_invitation_and_digest_emails_escape_every_stored_field(world, mailoutbox):
    from accounts.services import invitation_send
    from reports.digest import digests_send

    with tenant_scope(world.org):
        assert invitation_send(invitation_id=world.values["invitation_id"])
        assert digests_send(organization_id=world.org.pk, force=True) == 1
    assert len(mailoutbox) == 2
    for email in mailoutbox:
        ((html, mimetype),) = email.alternatives
        assert mimetype == "text/html"
        assert find_xss(html, where=email.subject) == [], html
        assert MARK in html  # stored payloads are in it, as text
