"""Sender identity: a verified from-address (signed link), reply-to, postal
address, the hold on email to leads until they are there, DKIM signing and the
DNS instructions."""

from __future__ import annotations

import re
import socket
import threading
from email import message_from_bytes, policy

import dkim as dkimpy
import pytest
from aiosmtpd.controller import Controller
from django.core import mail, signing
from django.urls import reverse

from accounts.audit import audit_events
from leadflow.core.tenancy import tenant_scope
from nurture import services
from nurture.channels.email import close_connection
from nurture.models import EmailMessage, MessageStatus, NurtureSettings
from nurture.services import sender
from nurture.services.sends import messages_send
from tests.factories import EmailMessageFactory, verified_sender

pytestmark = pytest.mark.django_db


def enroll_and_dispatch(org, sequence, leads, capture):
    with tenant_scope(org), capture(execute=True):
        services.enrollment_start(sequence=sequence, lead_ids=[lead.pk for lead in leads])
        return services.dispatch_due(organization_id=org.pk)


def settings_of(org) -> NurtureSettings:
    with tenant_scope(org):
        return NurtureSettings.objects.get()


def verify_link(body: str) -> str:
    return re.search(r"https?://\S+/e/sender/\S+/", body).group(0)


# --- real SMTP, DKIM verified with dkimpy -------------------------------------------


class Sink:
    def __init__(self):
        self.raw: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.raw.append(envelope.original_content)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_sink(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield handler
    close_connection()
    controller.stop()


def test_real_smtp_mail_is_dkim_signed_from_the_verified_sender_with_reply_to_and_postal_address(
    org, other_org, make_leads, make_sequence, smtp_sink, django_capture_on_commit_callbacks
):
    verified_sender(org, reply_to="replies@acme.example", physical_address="Acme GmbH, 1 Dock St")
    verified_sender(other_org, from_email="hello@globex.example", physical_address="Globex, 2 Elm")
    cfg = settings_of(org)
    assert (
        enroll_and_dispatch(
            org, make_sequence(org), make_leads(org, 1), django_capture_on_commit_callbacks
        )
        == 1
    )
    assert len(smtp_sink.raw) == 1
    raw = smtp_sink.raw[0]

    published = {f"{cfg.dkim_selector}._domainkey.acme.example.": cfg.dkim_public_key}

    def dnsfunc(name, timeout=5):
        key = published.get(name.decode())
        return f"v=DKIM1; k=rsa; p={key}".encode() if key else None

    assert dkimpy.verify(raw, dnsfunc=dnsfunc)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert "d=acme.example" in parsed["DKIM-Signature"].replace(" ", "")
    assert f"s={cfg.dkim_selector}" in parsed["DKIM-Signature"].replace(" ", "")
    assert parsed["From"] == "Acme News <news@acme.example>"
    assert parsed["Reply-To"] == "replies@acme.example"
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert "Acme GmbH, 1 Dock St" in text and "Acme GmbH, 1 Dock St" in html
    # A changed body or From breaks the signature: it covers both.
    assert not dkimpy.verify(raw.replace(b"Acme GmbH", b"Evil GmbH"), dnsfunc=dnsfunc)
    assert not dkimpy.verify(raw.replace(b"From: Acme News", b"From: Acme Newz"), dnsfunc=dnsfunc)


def test_the_private_key_is_stored_encrypted_and_signs_in_memory_backends_too(
    org, other_org, make_leads, make_sequence, django_capture_on_commit_callbacks
):
    cfg = settings_of(org)
    assert "PRIVATE KEY" not in cfg.dkim_private_key
    enroll_and_dispatch(
        org, make_sequence(org), make_leads(org, 1), django_capture_on_commit_callbacks
    )
    raw = mail.outbox[0].message().as_bytes(linesep="\r\n")
    key = cfg.dkim_public_key
    assert dkimpy.verify(raw, dnsfunc=lambda name, timeout=5: f"v=DKIM1; p={key}".encode())


# --- the hold: unverified sender, no postal address ---------------------------------


def test_an_unverified_sender_holds_marketing_email_says_why_and_sends_once_verified(
    admin_client, org, other_org, make_leads, make_sequence, django_capture_on_commit_callbacks
):
    verified_sender(org, from_email="news@acme.example", from_email_verified_at=None)
    sequence = make_sequence(org)
    assert (
        enroll_and_dispatch(org, sequence, make_leads(org, 2), django_capture_on_commit_callbacks)
        == 0
    )
    assert mail.outbox == []
    # The other tenant's ready sender sends as usual.
    assert (
        enroll_and_dispatch(
            other_org,
            make_sequence(other_org),
            make_leads(other_org, 1),
            django_capture_on_commit_callbacks,
        )
        == 1
    )
    page = admin_client.get(reverse("nurture:outbox", kwargs={"org_slug": org.slug}))
    html = page.content.decode()
    assert "Email to leads is on hold: 2 due steps" in html
    assert "news@acme.example is not verified" in html

    # The confirmation link, confirmed, releases the due steps.
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        sender.sender_verification_send(organization_id=org.pk)
    link = verify_link(mail.outbox[-1].body)
    path = link.split("://", 1)[1].partition("/")[2]
    assert "Confirm" in admin_client.get("/" + path).content.decode()
    assert not settings_of(org).from_email_verified_at  # a GET (a link scanner) verifies nothing
    assert admin_client.post("/" + path).status_code == 200
    assert settings_of(org).from_email_verified_at
    mail.outbox.clear()
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        assert services.dispatch_due(organization_id=org.pk) == 2
    assert len(mail.outbox) == 2
    assert {m.from_email for m in mail.outbox} == {"Acme News <news@acme.example>"}
    with tenant_scope(org):
        actions = [e.action for e in audit_events(organization=org)]
    assert "sender.verified" in actions


def test_a_queued_email_is_held_when_the_address_changes_and_goes_out_from_the_new_one(
    org, other_org, make_leads, make_sequence, django_capture_on_commit_callbacks
):
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=False):
        services.enrollment_start(
            sequence=make_sequence(org), lead_ids=[lead.pk for lead in make_leads(org, 1)]
        )
        services.dispatch_due(organization_id=org.pk)  # queued, not yet sent
        sender.sender_save(
            data={"from_name": "Acme", "from_email": "team@acme.example",
                  "physical_address": "Acme GmbH"},
            organization_id=org.pk,
        )  # fmt: skip
        message = EmailMessage.objects.get()
        assert messages_send(message_ids=[message.pk]) == {message.pk: "held"}
        message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED and message.attempts == 0
    assert message.error.startswith("On hold: The from-address team@acme.example is not verified")
    with tenant_scope(org):
        sender.sender_verification_send(organization_id=org.pk)
    assert mail.outbox[0].to == ["team@acme.example"]  # the confirmation link
    token = verify_link(mail.outbox[0].body).rstrip("/").rpartition("/")[2]
    with django_capture_on_commit_callbacks(execute=True):
        sender.sender_verify(token=token)
    sent = mail.outbox[-1]
    assert sent.from_email == "Acme News <team@acme.example>" and sent.to != ["team@acme.example"]
    with tenant_scope(org):
        assert EmailMessage.objects.get().status == MessageStatus.SENT


def test_no_postal_address_holds_marketing_email_but_not_a_reps_one_to_one_email(
    org, other_org, make_sequence
):
    verified_sender(org, physical_address="")
    sequence = make_sequence(org)
    with tenant_scope(org):
        marketing = EmailMessageFactory(enrollment__sequence=sequence)
        one_to_one = EmailMessageFactory(
            organization=org, enrollment=None, lead=marketing.lead, to_email="x@y.example"
        )
        outcomes = messages_send(message_ids=[marketing.pk, one_to_one.pk])
        marketing.refresh_from_db()
    assert outcomes == {marketing.pk: "held", one_to_one.pk: "sent"}
    assert "No postal address" in marketing.error
    assert marketing.status == MessageStatus.QUEUED


def test_a_link_for_a_previous_address_or_a_forged_one_verifies_nothing(client, org, other_org):
    verified_sender(org, from_email="old@acme.example", from_email_verified_at=None)
    old_token = sender.verification_token(settings_of(org))
    with tenant_scope(org):
        sender.sender_save(data={"from_email": "new@acme.example"}, organization_id=org.pk)
    with pytest.raises(sender.SenderError, match="no longer the sender"):
        sender.sender_verify(token=old_token)
    forged = signing.dumps({"o": org.pk, "e": "new@acme.example"}, salt="another.salt")
    response = client.post(reverse("nurture_public:sender_verify", kwargs={"token": forged}))
    assert response.status_code == 400 and "not valid" in response.content.decode()
    assert not settings_of(org).from_email_verified_at
    assert settings_of(other_org).from_email_verified_at  # the other tenant untouched


def test_changing_the_address_resets_verification_and_resend_is_rate_limited(
    org, other_org, django_capture_on_commit_callbacks
):
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        sender.sender_save(
            data={"from_email": "news@acme.example", "physical_address": "x"},
            organization_id=org.pk,
        )
        assert settings_of(org).from_email_verified_at  # the same address stays verified
        sender.sender_save(data={"from_email": "sales@acme.example"}, organization_id=org.pk)
    cfg = settings_of(org)
    assert cfg.from_email_verified_at is None and cfg.verification_sent_at
    with tenant_scope(org), pytest.raises(sender.SenderError, match="less than a minute ago"):
        sender.sender_verification_request(organization_id=org.pk)
    assert [m.to for m in mail.outbox] == [["sales@acme.example"]]


def test_a_sequence_may_not_send_from_another_address_than_the_verified_one(org, other_org):
    with tenant_scope(org), pytest.raises(services.SequenceInvalid, match="verified sender"):
        services.sequence_save(data={"name": "S", "from_email": "ceo@elsewhere.example"},
                               organization_id=org.pk)  # fmt: skip


# --- the page -------------------------------------------------------------------------


def test_the_sender_page_shows_status_what_is_missing_and_dns_records_never_the_private_key(
    admin_client, client_for, make_member, org, other_org
):
    verified_sender(org, from_email_verified_at=None, physical_address="")
    path = reverse("nurture:sender_settings", kwargs={"org_slug": org.slug})
    html = admin_client.get(path).content.decode()
    cfg = settings_of(org)
    assert "news@acme.example unverified" in html and "Postal address missing" in html
    assert "No postal address" in html
    assert "v=spf1 include:" in html
    assert f"{cfg.dkim_selector}._domainkey.acme.example" in html and cfg.dkim_public_key in html
    assert "_dmarc.acme.example" in html
    assert cfg.dkim_private_key not in html and "PRIVATE KEY" not in html
    marketer = make_member(org, role="marketer")
    assert client_for(marketer).get(path).status_code in (403, 404)

    data = {"from_name": "Acme", "from_email": "news@acme.example", "physical_address": "1 Main St"}
    response = admin_client.post(path, data)
    assert response.status_code == 302
    assert settings_of(org).physical_address == "1 Main St"


def test_the_openssl_rsa_step_signs_exactly_as_dkimpys_own(monkeypatch):
    """dkimpy's RSA step runs on OpenSSL (nurture.dkim): PKCS#1 v1.5 is
    deterministic, so the signature must be byte for byte dkimpy's own."""
    from nurture import dkim as signing_dkim
    from tests.factories import _test_dkim_key

    key = _test_dkim_key()
    message = b"From: a@acme.example\r\nTo: b@x.example\r\nSubject: hi\r\n\r\nbody\r\n"

    def sign():
        return signing_dkim.sign(
            message, selector="s", domain="acme.example", encrypted_key=key.private_key
        )

    fast = sign()
    monkeypatch.setattr(dkimpy, "RSASSA_PKCS1_v1_5_sign", signing_dkim._pure_rsa_sign)
    assert sign() == fast


def test_a_dkim_key_the_server_cannot_read_sends_unsigned_rather_than_not_at_all(
    org, other_org, make_leads, make_sequence, settings, django_capture_on_commit_callbacks
):
    from nurture.dkim import generate_key

    current = settings.SECRET_KEY
    settings.SECRET_KEY = "a secret key this server no longer has, not in its fallbacks"
    unreadable = generate_key(selector="old", bits=1024)
    settings.SECRET_KEY = current
    verified_sender(org, dkim_private_key=unreadable.private_key)
    enroll_and_dispatch(
        org, make_sequence(org), make_leads(org, 1), django_capture_on_commit_callbacks
    )
    assert "DKIM-Signature" not in mail.outbox[0].message()
    with tenant_scope(org):
        assert EmailMessage.objects.get().status == MessageStatus.SENT
