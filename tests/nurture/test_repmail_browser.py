"""A rep emails a lead from the lead page (preview, send), the lead's reply is
posted, signed, to the inbound webhook, and shows up threaded on the timeline;
the lead leaves its nurture sequence. At 1366 and at 390 px wide."""

import json
import re
import time
import urllib.request

import pytest
from django.core import mail

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from nurture.models import DirectEmail, DirectEmailStatus, EnrollmentStatus
from nurture.services.direct import mailbox_get
from pipeline.services.webhooks import sign
from tests.browser.playwright import login
from tests.factories import PASSWORD, EnrollmentFactory, LeadFactory, SequenceFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def post_reply(base_url: str, mailbox, payload: dict) -> int:
    body = json.dumps(payload).encode()
    now = int(time.time())
    request = urllib.request.Request(
        f"{base_url}/inbound/mail/{mailbox.key}/",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-LeadFlow-Timestamp": str(now),
            "X-LeadFlow-Signature": sign(mailbox.secret, now, body),
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


@pytest.mark.parametrize("width", [1366, 390])
def test_rep_emails_the_lead_and_the_reply_lands_on_the_timeline(
    page, new_page, shot, org, other_org, make_member, live_server, width
):
    rep = make_member(org, Role.SALES_REP, full_name="Ann Rep")
    with tenant_scope(org):
        lead = LeadFactory(organization=org, owner=rep, first_name="Grace", email="g@lead.example")
        enrollment = EnrollmentFactory(sequence=SequenceFactory(organization=org), lead=lead)
        mailbox = mailbox_get(organization_id=org.pk)
    page.set_viewport_size({"width": width, "height": 900})
    login(page, rep.user.email, PASSWORD)
    page.goto(f"/o/{org.slug}/leads/{lead.pk}/")
    page.click("[data-testid=email-lead]")
    page.wait_for_url(re.compile(r"/email/$"))
    page.fill("#id_subject", "Your demo, {{ first_name }}")
    page.fill("#id_body", "Hi {{ first_name }},\nshall we say Tuesday?\nAnn")
    page.click("[data-testid=email-preview]")
    assert page.inner_text("[data-testid=draft-subject]") == "Your demo, Grace"
    frame = page.frame_locator("[data-testid=draft-frame]")
    assert "Hi Grace," in frame.locator("body").inner_text()
    shot(page, f"repmail-compose-{width}")
    page.click("[data-testid=email-send]")
    page.wait_for_url(re.compile(rf"/leads/{lead.pk}/$"))
    with tenant_scope(org):
        sent = DirectEmail.objects.get(lead=lead)
    assert sent.status == DirectEmailStatus.SENT
    assert [m.subject for m in mail.outbox] == ["Your demo, Grace"]

    status = post_reply(
        live_server.url,
        mailbox,
        {
            "from": "Grace <g@lead.example>",
            "to": sent.reply_to,
            "subject": "Re: Your demo, Grace",
            "text": "Tuesday works for me.\n\nOn Mon, Ann Rep wrote:\n> Hi Grace,",
            "message_id": f"<reply-{width}@lead.example>",
            "in_reply_to": sent.message_id,
        },
    )
    assert status == 202
    page.reload()
    emails = page.locator("[data-testid=timeline-email]")
    assert emails.count() == 2
    texts = emails.all_inner_texts()
    assert "Tuesday works for me." in texts[0] and "On Mon" not in texts[0]
    assert "shall we say Tuesday?" in texts[1]
    threads = {emails.nth(i).get_attribute("data-thread") for i in range(2)}
    assert threads == {sent.thread_token}
    width_px = page.evaluate("document.documentElement.scrollWidth")
    assert width_px <= width, f"horizontal scroll at {width}px: {width_px}"
    shot(page, f"repmail-timeline-{width}")
    with tenant_scope(org):
        enrollment.refresh_from_db()
    assert enrollment.status == EnrollmentStatus.EXITED and enrollment.exit_reason == "replied"

    # A reply to no known thread waits for the admin, who files it under the lead.
    stray = {
        "from": "g@lead.example",
        "to": "info@acme.example",
        "subject": "Also",
        "text": "One more question.",
        "message_id": f"<stray-{width}@lead.example>",
    }
    assert post_reply(live_server.url, mailbox, stray) == 202
    admin = new_page()
    admin.set_viewport_size({"width": width, "height": 900})
    login(admin, make_member(org, Role.ADMIN).user.email, PASSWORD)
    admin.goto(f"/o/{org.slug}/nurture/inbound/")
    shot(admin, f"repmail-inbound-settings-{width}")
    admin.click("[data-testid=unmatched-link]")
    assert "One more question." in admin.inner_text("[data-testid=unmatched-list]")
    shot(admin, f"repmail-unmatched-{width}")
    admin.click("[data-testid=attach]")
    admin.wait_for_selector("text=No unmatched replies.")
    page.reload()
    assert page.locator("[data-testid=timeline-email]").count() == 3
