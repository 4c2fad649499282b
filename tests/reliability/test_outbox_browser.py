"""A marketer reads the outbox during an SMTP outage in a real browser: each
email's attempts, last error and next attempt, and an unconfirmed email they
choose to send again — at desktop and phone widths."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from nurture.models import EmailMessage, MessageStatus
from tests.browser.playwright import login
from tests.factories import PASSWORD, EmailMessageFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_outbox_shows_retries_and_sends_an_unconfirmed_email_again(
    page, shot, org, other_org, make_member
):
    with tenant_scope(org):
        EmailMessageFactory(
            enrollment__sequence__organization=org,
            subject="Your analytics guide",
            attempts=4,
            error="451 b'4.3.0 Mail server temporarily rejected message; try again later'",
            last_attempt_at=timezone.now(),
            next_attempt_at=timezone.now() + timedelta(minutes=8),
        )
        unsure = EmailMessageFactory(
            enrollment__sequence__organization=org,
            subject="Webinar recording",
            status=MessageStatus.UNCONFIRMED,
            attempts=1,
            handed_at=timezone.now(),
            error="Handed to the mail server but its answer was not recorded.",
        )
    with tenant_scope(other_org):
        EmailMessageFactory(enrollment__sequence__organization=other_org, subject="Globex news")
    marketer = make_member(org, Role.MARKETER, email="mia@acme.example")
    login(page, marketer.user.email, PASSWORD)

    page.goto(f"/o/{org.slug}/nurture/outbox/")
    table = page.locator("[data-testid=outbox-table]")
    assert "4 attempts" in table.inner_text() and "try again later" in table.inner_text()
    assert "next " in table.inner_text() and "Unconfirmed" in table.inner_text()
    assert "Globex news" not in page.content()
    shot(page, "reliability-outbox")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    shot(page, "reliability-outbox-390")
    # The table scrolls inside its card; the card itself fits the phone.
    card_right = page.evaluate(
        "document.querySelector('.table-responsive').getBoundingClientRect().right"
    )
    assert card_right <= 390, f"the outbox card is {card_right} px wide at 390 px"

    page.set_viewport_size({"width": 1360, "height": 900})
    page.get_by_role("link", name="Webinar recording").click()
    shot(page, "reliability-unconfirmed-message")
    page.get_by_test_id("resend").click()
    page.get_by_text("The email is queued to be sent again.").wait_for()
    with tenant_scope(org):
        unsure.refresh_from_db()
    assert unsure.status == MessageStatus.SENT
    assert [m.extra_headers["Message-ID"] for m in mail.outbox] == [unsure.message_id]
    with tenant_scope(other_org):
        assert EmailMessage.objects.get().status == MessageStatus.QUEUED
