"""The lead's reply comes back: the signed inbound webhook, thread matching,
idempotency, the EMAIL_REPLIED activity (scoring, nurture exit), and the
unmatched list an admin works through."""

from __future__ import annotations

import json
import logging
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, ActivityKind, Lead
from nurture.models import (
    EnrollmentStatus,
    InboundMail,
    InboundRejection,
    InboundStatus,
)
from nurture.services import direct
from nurture.services.inbound import reply_text
from pipeline.services.webhooks import sign
from scoring.engine.cache import config_changed
from scoring.models import RuleKind, ScoringRule
from tests.factories import EnrollmentFactory, LeadFactory, SequenceFactory

pytestmark = pytest.mark.django_db
QUERIES_UNMATCHED_LIST = 5  # session, user, membership with its org, count, page


@pytest.fixture
def rep(org, make_member):
    return make_member(org, Role.SALES_REP, full_name="Ann Rep")


@pytest.fixture
def thread(org, rep, django_capture_on_commit_callbacks):
    with tenant_scope(org):
        lead = LeadFactory(organization=org, owner=rep, email="g@lead.example")
        with django_capture_on_commit_callbacks(execute=True):
            return direct.direct_email_send(lead=lead, actor=rep, subject="Demo?", body="Hi")


def mailbox_of(org):
    with tenant_scope(org):
        return direct.mailbox_get(organization_id=org.pk)


def post(client, mailbox, payload, *, secret=None, timestamp=None, signature=None):
    body = json.dumps(payload).encode()
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {"HTTP_X_LEADFLOW_TIMESTAMP": str(timestamp)}
    if signature is None:
        signature = sign(secret or mailbox.secret, timestamp, body)
    if signature:
        headers["HTTP_X_LEADFLOW_SIGNATURE"] = signature
    url = reverse("nurture_public:inbound_mail", kwargs={"key": mailbox.key})
    return client.post(url, body, content_type="application/json", **headers)


def reply(thread, **overrides):
    payload = {
        "from": "Grace <g@lead.example>",
        "to": [thread.reply_to],
        "subject": "Re: Demo?",
        "text": "Yes, Tuesday works.\n\nOn Mon, Ann Rep wrote:\n> Hi",
        "html": "",
        "message_id": "<reply-1@lead.example>",
        "in_reply_to": thread.message_id,
        "references": [thread.message_id],
    }
    payload.update(overrides)
    return payload


def replies(org):
    with tenant_scope(org):
        return list(Activity.objects.filter(kind=ActivityKind.EMAIL_REPLIED))


def test_signed_reply_is_recorded_on_its_thread_trimmed(client, org, other_org, thread):
    response = post(client, mailbox_of(org), reply(thread))
    assert response.status_code == 202, response.content
    assert response.json()["status"] == InboundStatus.MATCHED
    (activity,) = replies(org)
    assert activity.lead_id == thread.lead_id
    assert activity.properties["thread"] == thread.thread_token
    assert activity.properties["excerpt"] == "Yes, Tuesday works."
    assert activity.properties["in_reply_to"] == thread.message_id


def test_matched_by_in_reply_to_when_the_plus_address_is_gone(client, org, thread):
    payload = reply(thread, to="someone@else.example", references="")
    assert post(client, mailbox_of(org), payload).json()["status"] == InboundStatus.MATCHED
    assert [a.lead_id for a in replies(org)] == [thread.lead_id]


@pytest.mark.parametrize(
    "how", ["bad_signature", "other_secret", "missing", "stale", "future", "tampered", "digits"]
)
def test_bad_missing_or_stale_signature_is_refused_and_logged(client, org, thread, how, caplog):
    mailbox = mailbox_of(org)
    kwargs = {
        "bad_signature": {"signature": "sha256=" + "0" * 64},
        "other_secret": {"secret": "whsec_not-the-one"},
        "missing": {"signature": ""},
        "stale": {"timestamp": int(time.time()) - 3600},
        "future": {"timestamp": int(time.time()) + 3600},
        "tampered": {},
        "digits": {"timestamp": "\u00b2" * 3},  # digits to str.isdigit(), not to int()
    }[how]
    payload = reply(thread)
    if how == "tampered":  # signed for another body
        body = json.dumps({**payload, "text": "other"}).encode()
        now = int(time.time())
        kwargs = {"timestamp": now, "signature": sign(mailbox.secret, now, body)}
    with caplog.at_level(logging.WARNING, logger="nurture.services.inbound"):
        response = post(client, mailbox, payload, **kwargs)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"
    assert "Inbound mail refused" in caplog.text
    with tenant_scope(org):
        assert InboundRejection.objects.count() == 1
        assert not InboundMail.objects.exists()
    assert replies(org) == []


def test_unknown_key_is_404_and_bad_payload_400(client, org, thread):
    mailbox = mailbox_of(org)
    url = reverse("nurture_public:inbound_mail", kwargs={"key": "x" * 32})
    assert client.post(url, b"{}", content_type="application/json").status_code == 404
    response = post(client, mailbox, {"to": "nobody"})  # signed, but no sender
    assert response.status_code == 400
    assert (
        client.get(reverse("nurture_public:inbound_mail", kwargs={"key": mailbox.key})).status_code
        == 405
    )


def test_provider_retry_records_nothing_twice(client, org, thread):
    mailbox = mailbox_of(org)
    first = post(client, mailbox, reply(thread))
    again = post(client, mailbox, reply(thread))
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == {**first.json(), "duplicate": True}
    assert len(replies(org)) == 1
    with tenant_scope(org):
        assert InboundMail.objects.count() == 1


def test_unknown_thread_is_kept_unmatched_never_dropped(client, org, thread):
    payload = reply(
        thread, to="reply-nope+ffffffffffffffffffffffff@x.example", in_reply_to="<nope@x>",
        references="", message_id="<stray@lead.example>",
    )  # fmt: skip
    response = post(client, mailbox_of(org), payload)
    assert response.status_code == 202 and response.json()["status"] == InboundStatus.UNMATCHED
    with tenant_scope(org):
        kept = InboundMail.objects.get()
    assert kept.status == InboundStatus.UNMATCHED and kept.text.startswith("Yes, Tuesday")
    assert replies(org) == []


def test_org_a_key_cannot_touch_org_b_thread(client, org, other_org, thread, make_member):
    """A reply naming org A's thread, posted to org B's webhook (signed with B's
    secret), stays in B's unmatched list and never reaches A's lead."""
    b_mailbox = mailbox_of(other_org)
    response = post(client, b_mailbox, reply(thread))
    assert response.status_code == 202 and response.json()["status"] == InboundStatus.UNMATCHED
    assert replies(org) == [] and replies(other_org) == []
    # And A's webhook refuses B's signature.
    assert post(client, mailbox_of(org), reply(thread), secret=b_mailbox.secret).status_code == 401


def test_reply_exits_nurture_and_a_scoring_rule_on_replies_adds_points(client, org, thread):
    with tenant_scope(org):
        ScoringRule.objects.create(
            organization=org, name="Replied", kind=RuleKind.ENGAGEMENT,
            activity_kinds=[ActivityKind.EMAIL_REPLIED], points=25,
        )  # fmt: skip
        config_changed(organization_id=org.pk)  # as the rule services do
        # A sequence that does not list "replies" among its exit conditions.
        enrollment = EnrollmentFactory(
            sequence=SequenceFactory(organization=org, exit_on=[]), lead_id=thread.lead_id
        )
        before = Lead.objects.get(pk=thread.lead_id).engagement_score
    assert post(client, mailbox_of(org), reply(thread)).status_code == 202
    with tenant_scope(org):
        enrollment.refresh_from_db()
        lead = Lead.objects.get(pk=thread.lead_id)
    assert enrollment.status == EnrollmentStatus.EXITED and enrollment.exit_reason == "replied"
    assert lead.engagement_score == before + 25


def test_admin_attaches_or_dismisses_unmatched_replies(client, org, thread, admin, client_for):
    mailbox = mailbox_of(org)
    for n in (1, 2):
        payload = reply(thread, to="x@y.example", in_reply_to="", references="",
                        message_id=f"<stray{n}@lead.example>")  # fmt: skip
        post(client, mailbox, payload)
    with tenant_scope(org):
        first, second = InboundMail.objects.order_by("pk")
    admin_client = client_for(admin)
    page = admin_client.get(reverse("nurture:inbound_unmatched", kwargs={"org_slug": org.slug}))
    assert page.status_code == 200 and page.content.count(b'data-testid="attach"') == 2
    kwargs = {"org_slug": org.slug, "inbound_id": first.pk}
    attach = admin_client.post(
        reverse("nurture:inbound_attach", kwargs=kwargs), {"email": first.from_email}
    )
    assert attach.status_code == 302
    kwargs["inbound_id"] = second.pk
    admin_client.post(reverse("nurture:inbound_dismiss", kwargs=kwargs))
    with tenant_scope(org):
        first.refresh_from_db()
        second.refresh_from_db()
    assert (first.status, first.lead_id) == (InboundStatus.ATTACHED, thread.lead_id)
    assert second.status == InboundStatus.DISMISSED
    assert [a.lead_id for a in replies(org)] == [thread.lead_id]


def test_a_sales_rep_cannot_see_inbound_settings_or_the_unmatched_list(org, rep, client_for):
    client = client_for(rep)
    for name in ("nurture:inbound_settings", "nurture:inbound_unmatched"):
        assert client.get(reverse(name, kwargs={"org_slug": org.slug})).status_code == 403


def test_settings_show_the_secret_once_and_rotation_invalidates_the_old_one(
    client, org, thread, admin, client_for
):
    old = mailbox_of(org)
    admin_client = client_for(admin)
    url = reverse("nurture:inbound_settings", kwargs={"org_slug": org.slug})
    shown = admin_client.get(url)
    assert old.secret.encode() not in shown.content and old.key.encode() in shown.content
    rotated = admin_client.post(url)
    new = mailbox_of(org)
    assert new.secret != old.secret and new.secret.encode() in rotated.content
    assert post(client, new, reply(thread), secret=old.secret).status_code == 401
    assert post(client, new, reply(thread)).status_code == 202


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Sounds good.\n\nOn Tue, 1 Dec 2026, Ann <a@x> wrote:\n> Hi", "Sounds good."),
        ("Yes\r\n-----Original Message-----\r\nFrom: Ann", "Yes"),
        ("Fine\n> quoted\n> more", "Fine"),
        ("Just text", "Just text"),
    ],
)
def test_quoted_text_is_trimmed(text, kept):
    assert reply_text(text) == kept


@pytest.mark.parametrize("n", [1, 12])
def test_unmatched_list_runs_a_constant_number_of_queries(
    org, other_org, admin, client_for, django_assert_num_queries, n
):
    with tenant_scope(org):
        for i in range(n):
            InboundMail.objects.create(
                organization=org, message_id=f"<s{i}@x>", from_email="a@x.example",
                received_at=timezone.now(), status=InboundStatus.UNMATCHED,
            )  # fmt: skip
    client = client_for(admin)
    url = reverse("nurture:inbound_unmatched", kwargs={"org_slug": org.slug})
    client.get(url)  # warm the session and the per-process caches
    with django_assert_num_queries(QUERIES_UNMATCHED_LIST):
        response = client.get(url)
    assert response.content.count(b'data-testid="dismiss"') == n
