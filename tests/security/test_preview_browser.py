"""A hosted-form visitor types markup as their first name; the admin opens the
template editor, whose preview shows that (newest) lead: nothing runs, in the
page or in the preview frame, and the visitor's text shows as text."""

import pytest

from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from tests.browser.playwright import login
from tests.factories import PASSWORD, EmailTemplateFactory
from tests.security.world import contact_form

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAYLOAD = "<img src=x onerror=alert(document.domain)>"


def test_visitor_markup_runs_nowhere_in_the_admins_template_preview(
    page, new_page, shot, org, other_org, admin
):
    with tenant_scope(org):
        form = contact_form(org)
        template = EmailTemplateFactory(
            organization=org,
            name="Welcome",
            subject="Welcome {{ first_name }}",
            body_html="<p>Hi {{ first_name }}, welcome.</p>",
            body_text="Hi {{ first_name }}, welcome.",
        )
    with tenant_scope(other_org):
        EmailTemplateFactory(organization=other_org, name="Welcome")

    visitor = new_page()
    visitor.goto(f"/f/{form.key}/")
    visitor.fill("input[name=email]", "eve@evil.example")
    visitor.fill("input[name=first_name]", PAYLOAD)
    visitor.click("button[type=submit]")
    visitor.wait_for_selector("text=Thank you")
    with tenant_scope(org):
        assert Lead.objects.get(email="eve@evil.example").first_name == PAYLOAD

    dialogs = []  # Playwright reports dialogs of every frame of the page here
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    login(page, admin.user.email, PASSWORD)
    page.goto(f"/o/{org.slug}/nurture/templates/{template.pk}/")
    page.wait_for_load_state("networkidle")  # the broken image has errored by now
    assert dialogs == []
    preview = page.frame_locator("iframe[title='Email preview']")
    assert PAYLOAD in preview.locator("body").inner_text()  # as text, in the frame
    assert PAYLOAD in page.inner_text("[data-testid=preview-subject]")
    page.click("button[data-bs-target='#preview-text']")
    assert PAYLOAD in page.inner_text("[data-testid=preview-text]")
    assert page.locator("#template-preview img").count() == 0  # no element came of it
    # Reload the preview through htmx (the lead picker) as the editor does.
    page.fill("#id_subject", "Hello {{ first_name }}")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=preview-subject]')"
        ".textContent.startsWith('Hello')"
    )
    assert PAYLOAD in preview.locator("body").inner_text()  # the swapped-in frame
    page.wait_for_function("() => [...document.images].every((img) => img.complete)")
    shot(page, "template-preview-hostile-lead")
    assert dialogs == []
    assert PAYLOAD in page.inner_text("[data-testid=preview-subject]")
