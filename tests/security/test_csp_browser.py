"""Chromium under the real Content-Security-Policy: the lead list (htmx filter),
a chart dashboard, the form builder (htmx swaps) and the API reference work and
report no CSP violation at all. Screenshots: test-artifacts/csp-*.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from leads.models import Channel, Lead
from tests import factories as f
from tests.browser.playwright import login
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Collects every violation the page sees, from the first byte on.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
                    " at " + e.sourceFile + ":" + e.lineNumber);
});
window.__swaps = 0;
// The page's own swaps: not the notification bell's, which polls on every page.
document.addEventListener("htmx:afterSwap", function (e) {
  if (!e.detail.target.closest(".notification-bell")) { window.__swaps += 1; }
});
"""


@pytest.fixture
def csp_page(page):
    console: list[str] = []
    page.on(
        "console",
        lambda msg: console.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.add_init_script(RECORD_VIOLATIONS)
    page.csp_console = console
    return page


def visit(page, path: str) -> None:
    response = page.goto(path)
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy, (path, policy)


def violations(page) -> list[str]:
    """This page's violations (the recorder starts afresh on each page)."""
    return [f"{page.url}: {v}" for v in page.evaluate("window.__csp")]


def test_key_pages_work_with_no_csp_violation(csp_page, shot, org, other_org, make_member):
    page = csp_page
    admin = make_member(org, Role.ADMIN, email="ada@acme.example")
    with tenant_scope(org):
        Lead.objects.bulk_create(
            Lead(
                organization=org,
                email=f"p{i}@demo.example",
                first_name="Zed" if i == 0 else f"Pat{i}",
                first_source=[Channel.PAID_SEARCH, Channel.WEBINAR, Channel.REFERRAL][i % 3],
            )
            for i in range(30)
        )
        form = f.CaptureFormFactory(organization=org, name="Demo request")
        first = f.CaptureFormFieldFactory(form=form, label="Work email", key="email")
        f.CaptureFormFieldFactory(form=form, label="Company", key="company")
    f.LeadFactory(organization=other_org, first_name="Zed")  # never shown

    login(page, admin.user.email, PASSWORD)
    page.wait_for_url("**/o/acme/**")
    seen = violations(page)

    # Lead list: the live filter is an htmx swap.
    visit(page, "/o/acme/leads/")
    page.locator("#id_q").press_sequentially("Zed")
    page.wait_for_function("() => window.__swaps > 0")
    page.wait_for_function("() => document.querySelectorAll('#results tbody tr').length === 1")
    shot(page, "csp-lead-list")
    seen += violations(page)

    # A chart dashboard: Chart.js draws every chart.
    visit(page, "/o/acme/reports/")
    page.wait_for_selector("canvas[data-drawn]")
    drawn = page.evaluate(
        "[...document.querySelectorAll('canvas[data-chart-kind=report]')]"
        ".map(c => !!Chart.getChart(c) && c.parentElement.offsetHeight > 100)"
    )
    assert drawn and all(drawn), drawn
    shot(page, "csp-dashboard")
    seen += violations(page)

    # The form builder: moving a field is an htmx swap of the builder.
    visit(page, f"/o/acme/forms/{form.pk}/")
    labels = page.locator("[data-testid=field-table] tbody a.fw-semibold")
    assert labels.all_inner_texts() == ["Work email", "Company"]
    page.click(f"button[aria-label='Move {first.label} down']")
    page.wait_for_function("() => window.__swaps > 0")
    assert labels.all_inner_texts() == ["Company", "Work email"]
    shot(page, "csp-form-builder")
    seen += violations(page)

    # The API reference, from vendored Swagger UI.
    visit(page, "/api/v1/docs")
    page.wait_for_selector(".swagger-ui .opblock")
    assert page.locator(".swagger-ui .opblock").count() >= 3
    shot(page, "csp-api-docs")
    seen += violations(page)

    assert seen + page.csp_console == []


def test_the_recorder_sees_a_violation(csp_page, org, make_member):
    """The check above can fail: an inline script injected by hand is reported."""
    page = csp_page
    page.goto("/accounts/login/")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.ran = 1'; document.body.appendChild(s); }"
    )
    page.wait_for_function("() => window.__csp.length > 0")
    assert page.evaluate("window.ran") is None
    assert any("script-src" in v for v in violations(page))
    assert page.csp_console  # Chromium's console message, too


# An inline color, and a remote image (another origin than the pages': the
# test server by its IP address), neither of which the pages' policy allows.
STYLED = (
    '<p style="color:#c0392b;font-size:22px">Hi {{ first_name }}</p>'
    '<p><img src="IMAGE" alt="logo" width="40" height="40" style="border:2px solid #2e86c1"></p>'
)


def frame_color(page, title: str) -> str:
    """The computed color of the email's first paragraph, inside its frame."""
    paragraph = page.frame_locator(f"iframe[title='{title}']").locator("p").first
    return paragraph.evaluate("(p) => getComputedStyle(p).color")


def test_email_previews_keep_their_styling_with_no_csp_violation(
    csp_page, shot, org, other_org, make_member, live_server
):
    """The email's inline styles apply inside the editor's live preview and the
    outbox's message frame (each its own URL under the email policy), and
    neither page nor frame reports a violation."""
    page = csp_page
    admin = make_member(org, Role.ADMIN, email="ada@acme.example")
    image = live_server.url.replace("localhost", "127.0.0.1") + "/static/favicon.svg"
    assert "localhost" in live_server.url  # so the image is on another origin
    styled = STYLED.replace("IMAGE", image)
    with tenant_scope(org):
        f.LeadFactory(organization=org, first_name="Ana", email="ana@acme.example")
        template = f.EmailTemplateFactory(organization=org, subject="Hi", body_html=styled)
        message = f.EmailMessageFactory(
            enrollment__sequence__organization=org,
            html=f"<!DOCTYPE html><html><body>{styled.replace('{{ first_name }}', 'Ana')}"
            "</body></html>",
        )
    with tenant_scope(other_org):
        f.EmailTemplateFactory(organization=other_org, body_html="<p>Not ours</p>")

    login(page, admin.user.email, PASSWORD)
    page.wait_for_url("**/o/acme/**")
    seen = violations(page)

    # The template editor: the saved template, then the unsaved draft as typed.
    visit(page, f"/o/acme/nurture/templates/{template.pk}/")
    assert frame_color(page, "Email preview") == "rgb(192, 57, 43)"
    frame = page.frame_locator("iframe[title='Email preview']")
    expect(frame.locator("img")).to_have_js_property("complete", True)
    assert frame.locator("img").evaluate("(img) => img.naturalWidth") > 0  # loaded, not blocked
    body = page.locator("#id_body_html")
    body.fill(body.input_value().replace("#c0392b", "#1e8449").replace("Hi ", "Hello "))
    page.wait_for_function("() => window.__swaps > 0")
    expect_text = frame.locator("p").first
    expect_text.filter(has_text="Hello").wait_for()
    assert frame_color(page, "Email preview") == "rgb(30, 132, 73)"
    shot(page, "csp-template-preview")
    seen += violations(page)

    # The outbox: one email as sent.
    visit(page, f"/o/acme/nurture/outbox/{message.pk}/")
    assert frame_color(page, "Email as sent") == "rgb(192, 57, 43)"
    shot(page, "csp-message-detail")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert frame_color(page, "Email as sent") == "rgb(192, 57, 43)"
    # The frame fits the phone (the navigation bar's overflow is base.html's, not this page's).
    frame_box = page.locator("iframe[title='Email as sent']").bounding_box()
    assert frame_box["x"] >= 0 and frame_box["x"] + frame_box["width"] <= 390
    page.locator("iframe[title='Email as sent']").scroll_into_view_if_needed()
    shot(page, "csp-message-detail-phone")
    seen += violations(page)

    assert seen + page.csp_console == []
