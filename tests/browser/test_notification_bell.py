"""The rep's bell: a lead routed to the rep while their page is open shows in the
bell within 5 seconds without a reload, with one desktop notification; opening it
goes to the lead and marks it read. The same at 390 px, where the bell and its
panel stay on the screen. The lead's name is hostile and stays text."""

import re
import time

import pytest

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from pipeline import services
from pipeline.models import Notification
from tests.browser.playwright import login
from tests.factories import PASSWORD, ActivityFactory, LeadFactory, TeamFactory, TeamMemberFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE = '<img src=x onerror="window.__xss=1">'

# Stand in for the browser's Notification API (headless Chromium shows none): the
# page's script sees permission "granted" and we count what it shows.
FAKE_NOTIFICATION = """
window.__shown = [];
window.Notification = class {
  constructor(title, options) { window.__shown.push({title, body: options.body}); }
  close() {}
  static get permission() { return "granted"; }
  static requestPermission() { return Promise.resolve("granted"); }
};
"""

BELL = "[data-testid=notification-bell]"
COUNT = "[data-testid=notification-count]"


@pytest.fixture
def rep(org, make_member):
    member = make_member(org, Role.SALES_REP, full_name="Rita Rep")
    TeamMemberFactory(team=TeamFactory(organization=org, is_default=True), membership=member)
    return member


def route_new_lead(org, first_name: str) -> Lead:
    with tenant_scope(org):
        lead = LeadFactory(organization=org, stage="mql", first_name=first_name, last_name="Doe")
        ActivityFactory(lead=lead, kind="demo_request")
        services.leads_route(organization_id=org.pk, lead_ids=[lead.pk])
        return lead


def wait_for_count(page, expected: int, started: float) -> float:
    page.wait_for_selector(f'{COUNT} [data-unread="{expected}"]', state="attached", timeout=5000)
    return time.monotonic() - started


LAPTOP, PHONE = {"width": 1366, "height": 800}, {"width": 390, "height": 844}


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366", "390"])
def test_a_new_assignment_rings_the_bell_within_5_seconds_without_a_reload(
    browser, live_server, shot, org, rep, viewport
):
    context = browser.new_context(base_url=live_server.url, viewport=viewport)
    context.add_init_script(FAKE_NOTIFICATION)
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        login(page, rep.user.email, PASSWORD)
        page.goto(f"/o/{org.slug}/pipeline/")
        wait_for_count(page, 0, time.monotonic())
        page.evaluate("window.__sameDocument = true")

        lead = route_new_lead(org, HOSTILE)
        waited = wait_for_count(page, 1, time.monotonic())
        assert waited < 5
        assert page.evaluate("window.__sameDocument") is True  # no reload
        shown = page.evaluate("window.__shown")
        assert len(shown) == 1 and "Doe" in shown[0]["body"] and "<" not in shown[0]["body"]
        # The next poll sees nothing newer: still one desktop notification.
        page.wait_for_timeout(3500)
        assert len(page.evaluate("window.__shown")) == 1

        # The bell and its panel fit the screen; the hostile name is text.
        bell = page.locator(BELL).bounding_box()
        assert bell and bell["x"] >= 0 and bell["x"] + bell["width"] <= viewport["width"]
        page.click(BELL)
        item = page.locator("[data-testid=notification-item]").first
        item.wait_for()
        panel = page.locator("[data-testid=notification-panel]").bounding_box()
        assert panel["x"] >= 0 and panel["x"] + panel["width"] <= viewport["width"] + 1
        assert HOSTILE in item.inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        shot(page, f"notification-bell-{viewport['width']}")
        assert page.evaluate("window.__xss") is None

        # Opening it goes to the lead and marks it read.
        item.click()
        page.wait_for_url(re.compile(rf"/leads/{lead.pk}/$"))
        wait_for_count(page, 0, time.monotonic())
        with tenant_scope(org):
            assert Notification.objects.get(lead=lead).read_at is not None

        # The list and the preferences (from the user menu) fit the screen too.
        for name in ("", "preferences/"):
            page.goto(f"/o/{org.slug}/notifications/{name}")
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
            shot(page, f"notification-{name.rstrip('/') or 'list'}-{viewport['width']}")
        assert page.is_visible("[data-notification-enable]") is False  # already "granted"
    finally:
        context.close()
