"""A founder signs up, invites a colleague who accepts, and switches organizations."""

import re

import pytest
from django.core import mail

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-unique-passphrase-42"


def test_signup_invite_accept_and_switch(page, new_page, shot, settings, live_server):
    settings.SITE_URL = live_server.url
    # The founder signs up and lands in their new workspace.
    page.goto("/")
    shot(page, "landing")
    page.click("text=Create your workspace")
    page.fill("input[name=email]", "founder@startup.io")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.fill("input[name=full_name]", "Fran Founder")
    page.fill("input[name=organization_name]", "Startup GmbH")
    shot(page, "signup")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/o/startup-gmbh/$"))
    assert "Welcome, Fran Founder" in page.content()
    shot(page, "org-home-new")

    # She invites a marketer from the members page.
    page.click(".sidebar >> text=Members")
    page.fill("#id_email", "mia@startup.io")
    page.select_option("#id_role", "marketer")
    page.click("text=Send invitation")
    page.wait_for_selector("text=Invitation sent to mia@startup.io")
    shot(page, "members")
    link = re.search(r"(/invitations/\S+/)", mail.outbox[-1].body).group(1)

    # Mia opens the link in her own browser, creates her account and joins.
    mia = new_page()
    mia.goto(link)
    assert "Join Startup GmbH" in mia.content()
    mia.click("text=Create account")
    mia.fill("input[name=email]", "mia@startup.io")
    mia.fill("input[name=password1]", PASSWORD)
    mia.fill("input[name=password2]", PASSWORD)
    mia.click("button[type=submit]")
    mia.wait_for_url(re.compile(r"/o/startup-gmbh/$"))
    shot(mia, "invitee-home")
    assert "you are marketer" in mia.content()
    # A marketer's navigation has no Members page.
    assert mia.locator(".sidebar >> text=Members").count() == 0

    # The founder creates a second organization and switches back with the switcher.
    page.goto("/orgs/new/")
    page.fill("input[name=name]", "Side Project")
    page.click('input[type=submit][value="Create organization"]')
    page.wait_for_url(re.compile(r"/o/side-project/$"))
    page.click("[data-testid=org-switcher]")
    shot(page, "org-switcher")
    page.click(".dropdown-menu >> text=Startup GmbH")
    page.wait_for_url(re.compile(r"/o/startup-gmbh/$"))
    assert page.locator("[data-testid=member-count]").inner_text() == "2"
