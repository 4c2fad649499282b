"""Public endpoints: unsubscribe (GET confirms, POST acts, one-click), open pixel,
click redirect; bad, expired and foreign tokens are harmless."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, Lead
from nurture import tokens
from nurture.models import EmailMessage, Enrollment, Suppression, Unsubscribe
from tests.factories import EmailMessageFactory, EnrollmentFactory

pytestmark = pytest.mark.django_db
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari"


@pytest.fixture
def sent(org, other_org):
    """A message delivered a minute ago, with one tracked link."""
    with tenant_scope(org):
        enrollment = EnrollmentFactory(sequence__organization=org)
        return EmailMessageFactory(
            enrollment=enrollment,
            status="sent",
            sent_at=timezone.now() - timedelta(minutes=1),
            links=["https://example.com/guide?a=1&b=2"],
        )


def path(name, purpose, message, **extra):
    token = tokens.make(
        purpose, organization_id=message.organization_id, message_id=message.message_id, **extra
    )
    return reverse(f"nurture_public:{name}", kwargs={"token": token})


def test_get_shows_a_confirm_page_and_does_not_unsubscribe(client, org, sent):
    response = client.get(path("unsubscribe", tokens.UNSUBSCRIBE, sent))
    assert response.status_code == 200
    assert sent.to_email in response.content.decode() and b'method="post"' in response.content
    with tenant_scope(org):
        assert not Unsubscribe.objects.exists() and not Suppression.objects.exists()
        assert not Lead.objects.get(pk=sent.lead_id).do_not_email


def test_post_unsubscribes_with_reason_once(org, other_org, sent):
    client = Client(enforce_csrf_checks=True)  # mail clients post without a CSRF cookie
    url = path("unsubscribe", tokens.UNSUBSCRIBE, sent)
    response = client.post(url, {"reason": "too_many", "comment": "weekly is plenty"})
    assert response.status_code == 200 and b"You are unsubscribed" in response.content
    client.post(url, {"List-Unsubscribe": "One-Click"})  # RFC 8058 one-click: idempotent
    with tenant_scope(org):
        (record,) = Unsubscribe.objects.all()
        assert record.reason == "I get too many emails — weekly is plenty"
        assert record.message_id == sent.pk and record.email == sent.to_email
        assert Suppression.objects.get().reason == "unsubscribe"
        assert Lead.objects.get(pk=sent.lead_id).do_not_email
        assert Enrollment.objects.get().status == "exited"
        assert Activity.objects.filter(kind="email_unsubscribe").count() == 1
    with tenant_scope(other_org):
        assert not Suppression.objects.exists()


@pytest.mark.parametrize("name", ["unsubscribe", "click"])
def test_tampered_expired_and_wrong_purpose_tokens_are_a_clear_400(
    client, org, sent, name, settings
):
    purpose = tokens.UNSUBSCRIBE if name == "unsubscribe" else tokens.CLICK
    extra = {"link": 0} if name == "click" else {}
    good = path(name, purpose, sent, **extra)
    wrong_purpose = path(name, tokens.OPEN, sent)
    for url in (
        good[:-3] + "xx/",
        wrong_purpose,
        f"/e/{'u' if name == 'unsubscribe' else 'c'}/bogus/",
    ):
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code in (400, 405), url
            if response.status_code == 400:
                assert b"This link is not valid" in response.content
    old = tokens.make(purpose, organization_id=org.pk, message_id=sent.message_id, **extra)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(tokens.MAX_AGE, purpose, -1)  # every token is expired
        method = client.post if name == "unsubscribe" else client.get
        response = method(reverse(f"nurture_public:{name}", kwargs={"token": old}))
    assert response.status_code == 400
    with tenant_scope(org):
        assert not Unsubscribe.objects.exists() and not Activity.objects.exists()


def test_another_orgs_token_never_touches_this_org(client, org, other_org, sent):
    # A genuine token of the other organization naming this org's Message-ID.
    token = tokens.make(
        tokens.UNSUBSCRIBE, organization_id=other_org.pk, message_id=sent.message_id
    )
    response = client.post(reverse("nurture_public:unsubscribe", kwargs={"token": token}))
    assert response.status_code == 404
    with tenant_scope(org):
        assert not Unsubscribe.objects.exists()
        assert not Lead.objects.get(pk=sent.lead_id).do_not_email


def test_click_redirects_only_to_the_messages_links_and_records_a_click(
    client, org, other_org, sent
):
    response = client.get(path("click", tokens.CLICK, sent, link=0), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 302
    assert response["Location"] == "https://example.com/guide?a=1&b=2"
    assert client.get(path("click", tokens.CLICK, sent, link=1)).status_code == 404
    with tenant_scope(org):
        message = EmailMessage.objects.get()
        assert message.clicked_at and message.opened_at and not message.machine_click
        click = Activity.objects.get(kind="email_click")
        assert click.lead_id == sent.lead_id and click.properties["url"].startswith("https://")
    with tenant_scope(other_org):
        assert not Activity.objects.exists()


def test_scanner_clicks_and_opens_are_flagged_not_recorded(client, org, sent):
    client.get(path("click", tokens.CLICK, sent, link=0), HTTP_USER_AGENT="Mimecast URL scanner")
    client.get(path("open", tokens.OPEN, sent), HTTP_USER_AGENT="python-requests/2.32")
    with tenant_scope(org):
        EmailMessage.objects.update(sent_at=timezone.now())  # and a click right on delivery
    client.get(path("click", tokens.CLICK, sent, link=0), HTTP_USER_AGENT=BROWSER)
    with tenant_scope(org):
        message = EmailMessage.objects.get()
        assert message.machine_click and message.machine_open
        assert message.clicked_at is None and message.opened_at is None
        assert not Activity.objects.exists()


def test_open_pixel_records_a_human_open(client, org, sent):
    response = client.get(path("open", tokens.OPEN, sent), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    client.get(path("open", tokens.OPEN, sent), HTTP_USER_AGENT=BROWSER)  # same hour: one activity
    assert client.get("/e/o/garbage.gif").status_code == 400
    with tenant_scope(org):
        assert EmailMessage.objects.get().opened_at is not None
        assert Activity.objects.filter(kind="email_open", lead_id=sent.lead_id).count() == 1
