"""A marketer nurtures a list in a real browser: writes a template (and sees the
preview fill in a real lead), builds a two-step sequence, enrolls a list, sends
what is due, and reads the emails in the outbox."""

import pytest
from django.core import mail

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from nurture.models import EmailMessage, Enrollment, MessageStatus
from nurture.services import lists as list_services
from tests.browser.playwright import login
from tests.factories import PASSWORD, EmailTemplateFactory, LeadFactory, NurtureListFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def nurture_org(org, other_org):
    with tenant_scope(org):
        leads = [
            LeadFactory(
                organization=org, first_name=name, company_name="Initech", email_opt_in=True
            )
            for name in ("Ana", "Bo", "Cy")
        ]
        LeadFactory(organization=org, first_name="Dee", email_opt_in=False)
        webinar = NurtureListFactory(organization=org, name="Webinar attendees")
        list_services.list_add_leads(
            nurture_list=webinar, lead_ids=[x.pk for x in leads] + [leads[0].pk]
        )
        EmailTemplateFactory(
            organization=org,
            name="Follow-up",
            subject="Still curious, {{ first_name }}?",
            body_html="<p>Hi {{ first_name }}, here is the recording.</p>",
        )
    return org


def test_marketer_builds_a_sequence_and_sends_it(page, shot, nurture_org, make_member):
    org = nurture_org
    marketer = make_member(org, Role.MARKETER, email="mia@acme.example")
    login(page, marketer.user.email, PASSWORD)

    page.goto(f"/o/{org.slug}/nurture/lists/")
    page.wait_for_selector("canvas[data-drawn]")
    assert page.inner_text("[data-testid=member-count]") == "3"
    shot(page, "nurture-lists")
    page.click("text=Webinar attendees")
    page.wait_for_selector("[data-testid=member-table]")
    page.fill("#lead-search", "Dee")  # no consent, still a lead: listed, enrolling skips her
    page.wait_for_selector("[data-testid=lead-search-results]")
    shot(page, "nurture-list-detail")

    # A template, previewed with a real lead while it is typed.
    page.click("text=Templates")
    page.click("text=New template")
    page.fill("#id_name", "Welcome")
    page.fill("#id_subject", "Welcome to Acme, {{ first_name }}")
    page.fill("#id_body_html", "<p>Hi {{ first_name }} at {{ company }}!</p><script>x()</script>")
    with tenant_scope(org):
        ana = Lead.objects.get(first_name="Ana")
    page.select_option("#preview-lead", str(ana.pk))
    page.wait_for_selector("[data-testid=preview-subject]:has-text('Welcome to Acme, Ana')")
    shot(page, "nurture-template-editor")
    page.fill("#id_subject", "Welcome {{ frist_name }}")
    page.wait_for_selector("[data-testid=preview-error]:has-text('unknown merge field')")
    page.fill("#id_subject", "Welcome to Acme, {{ first_name }}")
    page.click("button:has-text('Save template')")
    page.wait_for_selector("text=Template “Welcome” saved.")

    # A two-step sequence.
    page.click("text=Sequences")
    page.click("text=New sequence")
    page.fill("#id_name", "Webinar follow-up")
    page.check("#id_is_active")
    page.click("button:has-text('Save sequence')")
    page.wait_for_selector("text=Sequence “Webinar follow-up” saved.")
    page.select_option("#id_template", label="Welcome")
    page.click("button:has-text('Add step 1')")
    page.wait_for_selector("text=Step 1 added.")
    page.fill("#id_delay_days", "2")
    page.select_option("#id_template", label="Follow-up")
    page.click("button:has-text('Add step 2')")
    page.wait_for_selector("text=Step 2 added.")
    assert page.locator("[data-testid=step]").count() == 2

    page.select_option("#id_nurture_list", label="Webinar attendees")
    page.click("[data-testid=enroll] button:has-text('Enroll')")
    page.wait_for_selector("text=3 leads of Webinar attendees enrolled.")
    shot(page, "nurture-sequence-builder")
    with tenant_scope(org):
        assert Enrollment.objects.filter(status="active").count() == 3

    # The dispatcher sends the first step at once; the second waits two days.
    page.click("[data-testid=nurture-tabs] >> text=Outbox")
    page.click("button:has-text('Send due now')")
    page.wait_for_selector("text=3 emails queued for sending.")
    rows = page.locator("[data-testid=outbox-table] tbody tr")
    assert rows.count() == 3
    assert "Sent" in rows.first.inner_text()
    shot(page, "nurture-outbox")
    assert sorted(m.subject for m in mail.outbox) == [
        "Welcome to Acme, Ana",
        "Welcome to Acme, Bo",
        "Welcome to Acme, Cy",
    ]
    with tenant_scope(org):
        assert EmailMessage.objects.filter(status=MessageStatus.SENT).count() == 3

    page.click("text=Welcome to Acme, Ana")
    frame = page.frame_locator("[data-testid=message-html]")
    assert "Hi Ana at Initech!" in frame.locator("body").inner_text()
    shot(page, "nurture-message")

    page.goto(f"/o/{org.slug}/nurture/sequences/")
    page.click("[aria-label='Report of Webinar follow-up']")
    page.wait_for_selector("canvas[data-drawn]")
    assert "Step 1" in page.inner_text("[data-testid=report-table]")
    shot(page, "nurture-report")
