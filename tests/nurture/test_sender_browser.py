"""An admin sets the organization's sender in a real browser: saves an address
(unverified, email on hold, DNS records to copy), clicks the confirmation link
and sees it verified; the page fits a phone."""

import re

import pytest
from django.core import mail

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from nurture.models import NurtureSettings
from tests.browser.playwright import login
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_sets_and_verifies_the_sender(page, shot, org, other_org, make_member, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with tenant_scope(org):
        NurtureSettings.objects.all().delete()  # a fresh organization: no sender yet
    admin = make_member(org, Role.ADMIN, email="ada@acme.example")
    login(page, admin.user.email, PASSWORD)
    page.goto(f"/o/{org.slug}/nurture/sender/")
    page.wait_for_selector("[data-testid=sender-problems]:has-text('No from-address')")
    page.fill("#id_from_name", "Acme Analytics")
    page.fill("#id_from_email", "news@acme-analytics.example")
    page.fill("#id_physical_address", "Acme Analytics GmbH\nFriedrichstraße 1, 10117 Berlin")
    page.click("button:has-text('Save')")
    page.wait_for_selector("[data-testid=sender-badges]:has-text('unverified')")
    page.wait_for_selector("[data-testid=sender-problems]:has-text('is not verified')")
    name = page.input_value("[data-testid=dns-dkim] input >> nth=0")
    assert name.endswith("._domainkey.acme-analytics.example")
    value = page.input_value("[data-testid=dns-dkim] input >> nth=1")
    assert value.startswith("v=DKIM1; k=rsa; p=")
    shot(page, "sender-unverified")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 391
    shot(page, "sender-unverified-390")
    page.set_viewport_size({"width": 1366, "height": 900})

    link = re.search(r"https?://\S+/e/sender/\S+/", mail.outbox[-1].body).group(0)
    page.goto("/" + link.split("://", 1)[1].partition("/")[2])
    page.click("button:has-text('Confirm')")
    page.wait_for_selector("text=Sender confirmed")
    page.goto(f"/o/{org.slug}/nurture/sender/")
    page.wait_for_selector("[data-testid=sender-ready]")
    shot(page, "sender-verified")
    with tenant_scope(org):
        assert NurtureSettings.objects.get().from_email_verified_at
