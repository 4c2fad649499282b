"""The lead list in a browser: filters submit without repeating the query
string, the date range never overlaps the Filter button (1366 and 390 px), and
on a phone the filters fold behind a "Filters" button so the first rows show."""

from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.browser.playwright import login
from tests.factories import PASSWORD, LeadFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def _overlap(a, b) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def _no_overlap(page) -> None:
    button = page.locator("form[method=get] button[type=submit]").bounding_box()
    for name in ("created_min", "created_max"):
        box = page.locator(f"input[name={name}]").bounding_box()
        assert box and not _overlap(box, button), (name, box, button)


def test_lead_list_filters_at_laptop_and_phone(page, shot, org, other_org, admin, live_server):
    for n in range(30):
        LeadFactory(organization=org, email=f"lead{n}@initech.com", country="DE" if n % 2 else "US")
    LeadFactory(organization=other_org, email="secret@globex.com")
    login(page, admin.user.email, PASSWORD)
    page.goto(f"/o/{org.slug}/leads/?country=DE")
    for width in (800, 1024, LAPTOP["width"]):  # the md and lg columns and the laptop
        page.set_viewport_size({**LAPTOP, "width": width})
        _no_overlap(page)
    page.fill("#id_q", "lead1")
    page.click("form[method=get] button[type=submit]")
    page.wait_for_url(lambda u: "q=lead1" in u)
    page.locator("#id_country").fill("DE")
    page.click("form[method=get] button[type=submit]")
    page.wait_for_load_state("networkidle")
    keys = [k for k, _ in parse_qsl(urlsplit(page.url).query, keep_blank_values=True)]
    assert keys.count("country") == 1 and keys.count("q") == 1, page.url
    assert "secret@globex.com" not in page.content()
    shot(page, "lead-list-1366")

    page.set_viewport_size(PHONE)
    page.goto(f"/o/{org.slug}/leads/")
    toggle = page.locator("[data-testid=filters-toggle]")
    assert toggle.is_visible() and not page.locator("#lead-filters").is_visible()
    first_row = page.locator("[data-testid=lead-table] tbody tr").first
    assert first_row.bounding_box()["y"] < PHONE["height"]  # in view without scrolling
    # Rows are cards on a phone: the table does not scroll sideways inside its box.
    box = page.locator("[data-testid=lead-table]").locator("xpath=..")
    assert box.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
    assert first_row.evaluate("e => getComputedStyle(e).display") == "flex"
    assert first_row.locator("td[data-label=Country]").count() == 1  # named on the card
    shot(page, "lead-list-390")
    toggle.click()
    page.locator("#lead-filters.collapse.show").wait_for(state="visible")  # opened, not opening
    _no_overlap(page)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1
    shot(page, "lead-list-390-filters")
    # Marking every matching lead as junk asks first, with the count.
    page.goto(f"/o/{org.slug}/leads/?country=DE")
    page.select_option("select[name=action]", "mark_junk")
    page.check("#select-all-matching")
    page.click("#bulk-form button[type=submit]")
    confirm = page.locator("[data-testid=bulk-confirm]")
    confirm.wait_for()
    assert "15 leads" in confirm.inner_text()
    shot(page, "lead-bulk-confirm-390")
    page.click("[data-testid=bulk-confirm] button[type=submit]")
    page.wait_for_url(lambda u: "/leads/" in u and "bulk" not in u)
    page.goto(f"/o/{org.slug}/leads/export/?country=DE")
    shot(page, "lead-export-390")
