"""Merged email content is hostile: lead data (anyone can submit a hosted form)
and template text (any marketer) must never run script in the admin's session,
nor reach a reader as a javascript: link.

Issue 11: the template preview printed the rendered parts raw (text in <pre>,
HTML inside srcdoc="…"), and merge fields in URLs bypassed the sanitizer, which
runs on save, before lead data is merged. The email now loads its own URL in
the frame (its own policy, tests/nurture/test_preview_frames.py); these tests
read it there."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.urls import reverse
from django.utils.safestring import SafeData

from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from nurture import rendering, services
from nurture.channels.email import compose
from nurture.rendering import render_message, render_parts, track_links
from tests.factories import (
    EmailMessageFactory,
    EmailTemplateFactory,
    LeadFactory,
)
from tests.security.world import contact_form
from tests.security.xss import BREAK_OUT, JS_URL, POLYGLOT, SVG, find_xss, frame_documents

pytestmark = pytest.mark.django_db

IMG = "<img src=x onerror=lfxss(2)>"
MERGE_EVERYWHERE = (
    "<p>Hi {{ first_name }} {{ last_name }} of {{ company }} ({{ title }})</p>"
    '<p><a href="{{ first_name }}">you</a> <a href="{{ company }}">firm</a> '
    '<img src="{{ title }}" alt="{{ last_name }}"> '
    '<a href="{% if first_name %}javascript:lfxss(9){% endif %}">if</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)


def editor_url(org, template) -> str:
    kwargs = {"org_slug": org.slug, "template_id": template.pk}
    return reverse("nurture:template_edit", kwargs=kwargs)


def preview_url(org) -> str:
    return reverse("nurture:template_preview", kwargs={"org_slug": org.slug})


def frame(client, page: str) -> str:
    """The document of the page's one preview frame, as its URL answers it."""
    (document,) = frame_documents(client, page)
    return document


def hostile_lead(org, **fields) -> Lead:
    with tenant_scope(org):
        return LeadFactory(organization=org, **fields)


# --- the checker itself ---------------------------------------------------------------


def test_the_checker_flags_raw_payloads_and_not_escaped_ones():
    assert find_xss(f"<p>{IMG}</p>") and find_xss(f"<p>{SVG}</p>")
    assert find_xss("<script>lfxss(1)</script>")
    assert find_xss(f'<a href="{JS_URL}">x</a>') and find_xss('<a href=" java\tscript:x">x</a>')
    assert find_xss(f'<input value="{BREAK_OUT}">')  # breaks out of the attribute
    assert find_xss('<iframe srcdoc="<p>hi</p>" onload="lfxss(7)"></iframe>')
    assert find_xss(f'<iframe srcdoc="{html_lib.escape(IMG)}"></iframe>')  # the frame's own doc
    escaped = html_lib.escape(POLYGLOT)
    assert find_xss(f'<p title="{escaped}">{escaped}</p><pre>{escaped}</pre>') == []
    assert find_xss(f'<script type="application/json">"{escaped}"</script>') == []
    assert find_xss("<form onsubmit=\"return confirm('Revoke \\u003Cb lfxss(1)')\">") == []
    for quote in ('"', "'", ""):  # a payload leaves every attribute context
        assert find_xss(f"<input value={quote}{POLYGLOT}{quote}>")


# --- 1. the template preview ------------------------------------------------------------


def test_hosted_form_visitor_cannot_script_the_admins_template_preview(
    client, org, other_org, admin, client_for, django_capture_on_commit_callbacks
):
    """An anonymous visitor's first name runs nothing when the admin opens any
    template (the preview lead defaults to the newest lead)."""
    form = contact_form(org)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/f/{form.key}/", {"email": "eve@evil.example", "first_name": IMG})
    assert response.status_code == 200
    with tenant_scope(org):
        lead = Lead.objects.get(email="eve@evil.example")
        assert lead.first_name == IMG  # stored as typed: escaping is the page's job
        template = EmailTemplateFactory(
            organization=org, subject="Hi {{ first_name }}", body_html="<p>Hi {{ first_name }}</p>",
            body_text="Hi {{ first_name }}",
        )  # fmt: skip
    with tenant_scope(other_org):
        EmailTemplateFactory(organization=other_org)

    browser = client_for(admin)
    page = browser.get(editor_url(org, template)).content.decode()
    assert find_xss(page) == []
    # The payload is shown, as text, in the frame, the text part and the subject.
    assert f"<p>Hi {html_lib.escape(IMG)}</p>" in frame(browser, page)
    assert f"Hi {html_lib.escape(IMG)}</pre>" in page
    assert f'data-testid="preview-subject">Hi {html_lib.escape(IMG)}</span>' in page


def test_preview_frame_is_sandboxed_without_scripts_or_same_origin(org, other_org, admin_client):
    with tenant_scope(org):
        template = EmailTemplateFactory(organization=org)
        hostile_lead(org, first_name=IMG)
    page = admin_client.get(editor_url(org, template)).content.decode()
    frames = re.findall(r"<iframe\b[^>]*>", page)
    assert len(frames) == 1
    sandbox = re.search(r'\ssandbox(?:="([^"]*)")?[\s>]', frames[0])
    assert sandbox, frames[0]
    assert "allow-scripts" not in (sandbox.group(1) or "")
    assert "allow-same-origin" not in (sandbox.group(1) or "")


@pytest.mark.parametrize(
    "body",
    [
        '<p><a title=" onload=lfxss(7) x=" href="https://example.com/">read</a></p>',
        "<p><a href='https://example.com/?q=\" onload=lfxss(7) x=\"'>read</a></p>",
    ],
)
def test_a_quote_in_template_markup_cannot_leave_the_preview_frame(
    org, other_org, marketer, admin_client, body
):
    """A marketer's attribute or link (nh3 writes attributes in double quotes)
    used to end srcdoc="…" and add handlers to the admin's page."""
    with tenant_scope(org):
        hostile_lead(org, first_name="Ada")
        template = services.template_save(
            data={"name": "Quote", "subject": "Hi", "body_html": body}, actor=marketer
        )
    page = admin_client.get(editor_url(org, template)).content.decode()
    assert find_xss(page) == []
    document = frame(admin_client, page)
    assert "lfxss(7)" in document  # still there, as the frame's own markup


def test_htmx_preview_escapes_lead_data_and_template_text(org, other_org, admin_client):
    lead = hostile_lead(org, first_name=IMG, last_name=SVG, title=POLYGLOT)
    response = admin_client.post(
        preview_url(org),
        {
            "subject": "Hi {{ first_name }}",
            "body_html": MERGE_EVERYWHERE + '<p title="&quot; onload=lfxss(8) x=">q</p>',
            "body_text": "{{ first_name }} {{ last_name }} {{ title }}",
            "lead": lead.pk,
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert find_xss(page) == []
    document = frame(admin_client, page)  # the draft, loaded by the frame's URL
    assert find_xss(document) == []
    assert html_lib.escape(IMG) in document


def test_rendered_parts_are_never_marked_safe(org, other_org):
    rendered = render_parts(
        subject="{{ first_name }}",
        body_html="<p>{{ first_name }}</p>",
        body_text="{{ first_name }}",
        context={"first_name": IMG},
    )
    derived = render_parts(
        subject="x", body_html="<p>{{ first_name }}</p>", body_text="", context={"first_name": IMG}
    )
    for part in (rendered.subject, rendered.html, rendered.text, derived.text):
        assert not isinstance(part, SafeData), part


# --- 2. merge fields in URLs ------------------------------------------------------------


@pytest.mark.parametrize(
    "first_name",
    [JS_URL, " JaVaScRiPt:lfxss(3)", "java\tscript:lfxss(3)", "\x01javascript:lfxss(3)",
     "vbscript:lfxss(3)", "data:text/html,<script>lfxss(3)</script>"],
)  # fmt: skip
def test_merge_field_in_a_link_cannot_make_a_script_url(org, other_org, admin, first_name):
    with tenant_scope(org):
        template = services.template_save(
            data={"name": "Links", "subject": "Hi", "body_html": MERGE_EVERYWHERE},
            actor=admin,
        )
        assert 'href="{{ first_name }}"' in template.body_html  # nh3 saw no URL on save
        lead = hostile_lead(org, first_name=first_name, company_name="mailto:sales@acme.example")
        rendered = render_message(template=template, lead=lead)
    assert find_xss(rendered.html) == [], rendered.html
    assert "<a>you</a>" in rendered.html and "<a>if</a>" in rendered.html  # targets dropped
    assert 'href="mailto:sales@acme.example"' in rendered.html  # good schemes stay


def test_sent_email_has_no_script_url_and_tracks_only_web_links(org, other_org, admin):
    with tenant_scope(org):
        template = services.template_save(
            data={"name": "Links", "subject": "Hi", "body_html": MERGE_EVERYWHERE},
            actor=admin,
        )
        lead = hostile_lead(
            org, first_name=JS_URL, company_name="https://example.com/firm", title=IMG
        )
        composed = compose(
            organization=org, lead=lead, subject=template.subject, body_html=template.body_html,
            body_text="", message_id="<m1@acme.example>",
        )  # fmt: skip
    assert find_xss(composed.html) == [], composed.html
    assert "<a>you</a>" in composed.html and "<a>if</a>" in composed.html  # targets dropped
    assert composed.links == ["https://example.com/firm"]
    assert all(rendering.url_scheme_allowed(link) for link in composed.links)


@pytest.mark.parametrize(
    "href", [JS_URL, " javascript:lfxss(3)", "JAVASCRIPT:lfxss(3)", "jav&#x09;ascript:lfxss(3)"]
)
def test_click_tracking_drops_script_links(href):
    html, links = track_links(
        f'<p><a href="{href}">x</a> <a href="https://example.com/">y</a></p>',
        tracked_url=lambda i: f"https://t.example/c/{i}/",
        skip=set(),
    )
    assert find_xss(html) == [] and links == ["https://example.com/"]
    assert 'href="https://t.example/c/0/"' in html


def test_click_redirect_refuses_a_script_link_stored_in_a_message(client, org, other_org):
    from nurture import tokens

    with tenant_scope(org):
        message = EmailMessageFactory(
            enrollment__sequence__organization=org, links=[JS_URL, "https://example.com/"]
        )
    bad = tokens.click_url(organization_id=org.pk, message_id=message.message_id, link=0)
    good = tokens.click_url(organization_id=org.pk, message_id=message.message_id, link=1)
    path = lambda u: u[u.index("/e/c/") :]  # noqa: E731
    assert client.get(path(bad)).status_code == 404
    assert client.get(path(good))["Location"] == "https://example.com/"


def test_url_scheme_check_reads_urls_like_a_browser():
    for good in ("https://a.example/x", "http://a", "mailto:a@b.example", "/relative", "#top",
                 "page?x=javascript:1", ""):  # fmt: skip
        assert rendering.url_scheme_allowed(good), good
    for bad in ("javascript:x", " \x00javascript:x", "java\nscript:x", "data:text/html,x",
                "vbscript:x", "file:///etc/passwd"):  # fmt: skip
        assert not rendering.url_scheme_allowed(bad), bad
