"""GDPR journeys in the browser: a visitor's double opt-in from the hosted form to
the confirmation click; an admin erases a person, whose re-submission through
the hosted form stays suppressed."""

import re

import pytest
from django.core import mail

from leadflow.core.tenancy import tenant_scope
from leads.models import ConsentRecord, FieldType, FormSubmission, Lead
from tests.browser.playwright import login
from tests.factories import (
    PASSWORD,
    ActivityFactory,
    CaptureFormFactory,
    CaptureFormFieldFactory,
    LeadFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TEXT = "Send me the monthly product letter."


def _form(org, **kwargs):
    form = CaptureFormFactory(organization=org, name="Newsletter", consent_text=TEXT, **kwargs)
    CaptureFormFieldFactory(
        form=form, key="email", label="Email", field_type=FieldType.EMAIL, maps_to="email",
        required=True,
    )  # fmt: skip
    return form


def test_double_opt_in_from_form_to_confirmation(page, shot, org, other_org, settings, live_server):
    settings.SITE_URL = live_server.url
    form = _form(org, double_opt_in=True)
    page.goto(f"/f/{form.key}/")
    page.fill("input[name=email]", "Mulder@FBI-Field.org")
    page.check("input[name=consent]")
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=capture-success]")
    with tenant_scope(org):
        lead = Lead.objects.get(email="mulder@fbi-field.org")
        assert not lead.email_opt_in and not ConsentRecord.objects.exists()
    (message,) = mail.outbox
    link = re.search(r"https?://\S+/c/\S+/", message.body).group(0)

    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(link)
    shot(page, "consent-confirm-390")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.click("[data-testid=consent-confirm]")
    page.wait_for_selector("[data-testid=consent-confirmed]")
    shot(page, "consent-confirmed")
    with tenant_scope(org):
        lead.refresh_from_db()
        assert lead.email_opt_in
        (record,) = ConsentRecord.objects.all()
        assert record.text == TEXT and record.action == "given" and record.ip_hash
    with tenant_scope(other_org):
        assert not ConsentRecord.objects.exists()


def test_erasure_then_resubmission_stays_suppressed(
    page, new_page, shot, org, other_org, admin, live_server
):
    form = _form(org)
    with tenant_scope(org):
        lead = LeadFactory(organization=org, email="skinner@fbi-field.org", first_name="Walter")
        ActivityFactory(lead=lead)
    login(page, admin.user.email, PASSWORD)
    page.goto(f"/o/{org.slug}/leads/{lead.pk}/")
    page.click("[data-testid=privacy-erase]")
    page.wait_for_selector("[data-testid=erase-warning]")
    shot(page, "erase-confirm")
    page.set_viewport_size({"width": 390, "height": 800})
    shot(page, "erase-confirm-390")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.click("[data-testid=erase-confirm]")
    page.wait_for_selector("text=Erased:")
    with tenant_scope(org):
        assert not Lead.objects.filter(email="skinner@fbi-field.org").exists()

    visitor = new_page()
    visitor.goto(f"/f/{form.key}/")
    visitor.fill("input[name=email]", "skinner@fbi-field.org")
    visitor.check("input[name=consent]")
    visitor.click("button[type=submit]")
    visitor.wait_for_selector("[data-testid=capture-success]")  # told nothing
    with tenant_scope(org):
        assert not Lead.objects.filter(email="skinner@fbi-field.org").exists()
        submission = FormSubmission.objects.get(form=form)
        assert submission.outcome == "invalid" and submission.lead_id is None
        assert submission.outcome_reasons[0]["code"] == "suppressed"
        assert not ConsentRecord.objects.exists()
