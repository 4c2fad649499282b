"""The capture form in a browser: the key follows the label, the copy button
copies, and the embed script sizes the iframe to the form — only on messages
from that iframe."""

import pytest

from tests.browser.playwright import login
from tests.factories import PASSWORD, CaptureFormFactory, CaptureFormFieldFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_key_follows_label_and_copy_button(page, shot, org, admin, live_server):
    form = CaptureFormFactory(organization=org, name="Demo")
    CaptureFormFieldFactory(form=form, key="email", label="Email", maps_to="email")
    login(page, admin.user.email, PASSWORD)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/o/{org.slug}/forms/{form.pk}/fields/new/")
    page.fill("#id_label", "Größe des Teams")
    assert page.input_value("#id_key") == "grosse_des_teams"
    page.fill("#id_key", "seats")
    page.fill("#id_label", "Seats wanted")
    assert page.input_value("#id_key") == "seats"  # edited by hand: left alone
    shot(page, "form-field-new-390")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"/o/{org.slug}/forms/{form.pk}/")
    page.click("[data-testid=copy-embed-iframe]")
    page.locator("[data-testid=copy-embed-iframe]", has_text="Copied").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "data-leadflow-form" in copied and "leadflow-embed.js" in copied
    shot(page, "form-detail-390")


def test_embed_resizes_the_iframe_to_the_form(page, org, live_server):
    form = CaptureFormFactory(organization=org, name="Long form")
    CaptureFormFieldFactory(form=form, key="email", label="Email", maps_to="email")
    for n in range(14):
        CaptureFormFieldFactory(form=form, key=f"q{n}", label=f"Question {n}", position=n + 1)
    # The customer's page, on another origin than the app (a data: page).
    page.goto(f"{live_server.url}/f/{form.key}/")  # warm up (static files, caches)
    snippet = (
        f'<iframe data-leadflow-form src="{live_server.url}/f/{form.key}/" width="100%" '
        'height="640" style="border:0"></iframe>'
        f'<script src="{live_server.url}/static/js/leadflow-embed.js"></script>'
    )
    page.set_content(f"<!doctype html><html><body>{snippet}</body></html>")
    frame = page.locator("iframe[data-leadflow-form]")
    page.wait_for_function(
        "() => parseInt(document.querySelector('iframe').style.height || '0') > 700"
    )
    height = frame.bounding_box()["height"]
    inner = (
        page.frame_locator("iframe")
        .locator("body")
        .evaluate("() => document.documentElement.scrollHeight")
    )
    assert abs(height - inner) <= 8, (height, inner)  # the form, not 640 px
    src = frame.get_attribute("src")
    assert "page_url=" in src
    # A message from the page itself (not the iframe) is ignored.
    page.evaluate("window.postMessage({type: 'leadflow:height', height: 50}, '*')")
    page.wait_for_timeout(200)
    assert frame.bounding_box()["height"] == height
