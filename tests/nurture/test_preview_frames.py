"""Email previews are documents of their own: a srcdoc frame inherited the
page's policy, which blocks the email's inline styles and remote images. The
template editor's preview and the outbox's message each load their own URL,
answered under the email policy (inline styles and images, no script, a
sandbox), tenant-scoped and behind the nurture permission."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.urls import reverse

from accounts.models import Role
from accounts.permissions import Perm, role_has_perm
from leadflow.core.tenancy import tenant_scope
from tests.factories import EmailMessageFactory, EmailTemplateFactory, LeadFactory

pytestmark = pytest.mark.django_db

STYLED = '<p style="color:#c0392b;font-size:18px">Hi {{ first_name }}</p>'
EMAIL_POLICY = {
    "default-src 'none'",
    "style-src 'unsafe-inline'",
    "img-src https: http: data:",
    "font-src https: data:",
    "sandbox",
}


def url(name: str, org, **kwargs) -> str:
    return reverse(f"nurture:{name}", kwargs={"org_slug": org.slug, **kwargs})


def policy(response) -> set[str]:
    return {d.strip() for d in response["Content-Security-Policy"].split(";")}


def assert_email_document(response) -> str:
    assert response.status_code == 200
    assert policy(response) == EMAIL_POLICY
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert "no-store" in response["Cache-Control"]
    return response.content.decode()


def frame_src(page: str) -> str:
    (frame,) = re.findall(r"<iframe\b[^>]*>", page)
    assert 'sandbox=""' in frame and "srcdoc" not in frame, frame
    return html_lib.unescape(re.search(r'\ssrc="([^"]+)"', frame).group(1))


@pytest.fixture
def styled(org, other_org):
    with tenant_scope(org):
        template = EmailTemplateFactory(organization=org, subject="Hi", body_html=STYLED)
        ana = LeadFactory(organization=org, first_name="Ana", email="ana@acme.example")
        message = EmailMessageFactory(
            enrollment__sequence__organization=org, html=f"<html><body>{STYLED}</body></html>"
        )
    with tenant_scope(other_org):
        spy = LeadFactory(organization=other_org, first_name="Spy", email="spy@other.example")
        foreign = EmailTemplateFactory(organization=other_org, body_html=STYLED)
        foreign_message = EmailMessageFactory(enrollment__sequence__organization=other_org)
    return template, ana, message, spy, foreign, foreign_message


def test_saved_template_preview_is_an_email_document_with_its_inline_style(
    admin_client, org, styled
):
    template, ana, _, spy, _, _ = styled
    path = url("template_preview_html", org, template_id=template.pk)
    body = assert_email_document(admin_client.get(f"{path}?lead={ana.pk}"))
    assert body.startswith("<!DOCTYPE html>")
    assert '<p style="color:#c0392b;font-size:18px">Hi Ana</p>' in body
    # Another organization's lead is no choice: the newest lead of ours stands in.
    assert "Spy" not in admin_client.get(f"{path}?lead={spy.pk}").content.decode()
    assert admin_client.get(f"{path}?lead=x").status_code == 200


def test_message_body_is_the_email_as_sent_under_the_email_policy(admin_client, org, styled):
    _, _, message, _, _, _ = styled
    body = assert_email_document(admin_client.get(url("message_body", org, message_id=message.pk)))
    assert body == message.html  # a whole document already: served as stored


def test_another_tenants_template_and_message_are_404(admin_client, org, styled):
    *_, foreign, foreign_message = styled
    assert (
        admin_client.get(url("template_preview_html", org, template_id=foreign.pk)).status_code
        == 404
    )
    assert (
        admin_client.get(url("message_body", org, message_id=foreign_message.pk)).status_code == 404
    )


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.MARKETER])
def test_each_role_gets_what_the_permission_table_says(org, styled, make_member, client_for, role):
    template, _, message, *_ = styled
    client = client_for(make_member(org, role))
    expected = 200 if role_has_perm(role, Perm.MANAGE_NURTURE) else 403
    assert expected == (403 if role == Role.SALES_REP else 200)  # the table as it stands
    for path in (
        url("template_preview_html", org, template_id=template.pk),
        url("template_draft_html", org),
        url("message_body", org, message_id=message.pk),
    ):
        response = client.get(path)
        assert response.status_code == expected, path
        if expected == 403:
            assert "Hi " not in response.content.decode()


def test_editor_and_message_pages_frame_the_email_urls(admin_client, org, styled):
    template, _, message, *_ = styled
    editor = admin_client.get(url("template_edit", org, template_id=template.pk)).content.decode()
    chosen = re.search(r'<option value="(\d+)" selected>', editor).group(1)  # the newest lead
    src = frame_src(editor)
    assert src == url("template_preview_html", org, template_id=template.pk) + f"?lead={chosen}"
    detail = admin_client.get(url("message_detail", org, message_id=message.pk)).content.decode()
    assert frame_src(detail) == url("message_body", org, message_id=message.pk)


def test_the_live_preview_frame_loads_its_authors_unsaved_draft(
    admin_client, org, styled, make_member, client_for
):
    template, ana, *_ = styled
    draft = {
        "subject": "Draft for {{ first_name }}",
        "body_html": '<p style="color:#1e8449">Unsaved {{ first_name }}</p>',
        "body_text": "",
        "lead": ana.pk,
        "template": template.pk,
    }
    page = admin_client.post(url("template_preview", org), draft, HTTP_HX_REQUEST="true")
    src = frame_src(page.content.decode())
    assert src.startswith(url("template_draft_html", org) + f"?template={template.pk}&")
    body = assert_email_document(admin_client.get(src))
    assert '<p style="color:#1e8449">Unsaved Ana</p>' in body
    assert "<title>Draft for Ana</title>" in body

    # Each editor keeps its own draft: a new template's does not replace it.
    admin_client.post(url("template_preview", org), {**draft, "template": "", "body_html": "New"})
    assert "Unsaved Ana" in admin_client.get(src).content.decode()
    # Nobody else can load it, not even an admin of the same organization.
    other_admin = client_for(make_member(org, Role.ADMIN))
    assert "Unsaved" not in assert_email_document(other_admin.get(src))

    # An invalid draft shows its error and no frame; a re-shown form frames its draft.
    bad = admin_client.post(url("template_preview", org), {**draft, "subject": "{{ nope }}"})
    assert "<iframe" not in bad.content.decode()
    shown = admin_client.post(
        url("template_edit", org, template_id=template.pk),
        {"name": "", "subject": "Hi", "body_html": '<p style="color:#1e8449">Re-shown</p>'},
    )
    assert shown.status_code == 400
    assert "Re-shown" in admin_client.get(frame_src(shown.content.decode())).content.decode()


def test_an_expired_draft_says_so(admin_client, org, styled):
    body = assert_email_document(admin_client.get(url("template_draft_html", org) + "?template=1"))
    assert "expired" in body
