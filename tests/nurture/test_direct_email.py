"""A rep emails a lead from the lead page: compose with merge fields, a safe
preview, one ledger row + EMAIL_SENT activity, delivered exactly once as the
rep (From name, the organization's address, a plus-addressed Reply-To),
deferred through an SMTP outage, never sent twice after a crash."""

from __future__ import annotations

import datetime as dt
from email.utils import parseaddr
from unittest import mock

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, ActivityKind
from nurture.channels.email import EmailChannel, TransientSendError
from nurture.models import DirectEmail, DirectEmailStatus, NurtureSettings
from nurture.rendering import TemplateInvalid
from nurture.services import direct
from nurture.services.dispatch import dispatch_due
from tests.factories import AssignmentFactory, LeadFactory, verified_sender

pytestmark = pytest.mark.django_db

committed = None
QUERIES_COMPOSE_PAGE = 6  # session, user, membership with its org, lead, sender settings, emails
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


@pytest.fixture
def rep(org, make_member):
    return make_member(org, Role.SALES_REP, full_name="Ann Rep")


@pytest.fixture
def lead(org, rep):
    with tenant_scope(org):
        verified_sender(org, from_email="sales@acme.example", from_name="Acme")
        return LeadFactory(organization=org, owner=rep, first_name="Grace", email="g@lead.example")


def compose_url(org, lead_id):
    return reverse("nurture:lead_email", kwargs={"org_slug": org.slug, "lead_id": lead_id})


@pytest.fixture(autouse=True)
def _commits(django_capture_on_commit_callbacks, monkeypatch):
    """Tasks enqueued on commit run when the test's block ends (as after a commit)."""
    global committed
    committed = lambda: django_capture_on_commit_callbacks(execute=True)  # noqa: E731


def send(rep, lead, subject="Hello {{ first_name }}", body="Hi {{ first_name }},\nshall we talk?"):
    with tenant_scope(rep.organization), committed():
        return direct.direct_email_send(lead=lead, actor=rep, subject=subject, body=body)


def sweep(org, **kwargs):
    with committed():
        dispatch_due(organization_id=org.pk, **kwargs)


def test_send_writes_ledger_and_activity_and_mails_as_the_rep(org, other_org, rep, lead):
    email = send(rep, lead)
    with tenant_scope(org):
        email.refresh_from_db()
        activity = Activity.objects.get(lead=lead, kind=ActivityKind.EMAIL_SENT)
    assert email.status == DirectEmailStatus.SENT and email.attempts == 1 and email.sent_at
    assert email.subject == "Hello Grace" and email.text.startswith("Hi Grace,")
    assert activity.properties["thread"] == email.thread_token
    assert activity.properties["message_id"] == email.message_id
    (sent,) = mail.outbox
    assert sent.to == ["g@lead.example"]
    assert parseaddr(sent.from_email) == ("Ann Rep (Acme)", "sales@acme.example")
    assert sent.reply_to == [f"{email.reply_to}"]
    local, _, domain = email.reply_to.partition("@")
    assert local.endswith(f"+{email.thread_token}") and domain
    assert sent.extra_headers["Message-ID"] == email.message_id


def test_a_reps_email_is_dkim_signed_and_refused_from_an_unverified_sender(org, rep, lead):
    send(rep, lead)
    (sent,) = mail.outbox
    assert sent.message()["DKIM-Signature"] and "d=acme.example" in sent.message()["DKIM-Signature"]
    with tenant_scope(org):
        NurtureSettings.objects.update(from_email_verified_at=None)
    with pytest.raises(direct.NurtureError, match="not verified"):
        send(rep, lead)
    with tenant_scope(org):
        assert DirectEmail.objects.count() == 1


def test_a_retried_task_never_sends_twice(org, rep, lead):
    email = send(rep, lead)
    with tenant_scope(org):
        assert direct.direct_email_deliver(direct_email_id=email.pk) == "skipped"
        # Even a queued row claimed by another worker first: only one claim wins.
        DirectEmail.objects.filter(pk=email.pk).update(status=DirectEmailStatus.QUEUED)
        assert direct._claim(email.pk, timezone.now()) is not None
        assert direct._claim(email.pk, timezone.now()) is None
    assert len(mail.outbox) == 1


def _crashed(email, *, handed: bool):
    """The row as a worker killed mid-send leaves it."""
    long_ago = timezone.now() - dt.timedelta(hours=1)
    DirectEmail.objects.filter(pk=email.pk).update(
        status=DirectEmailStatus.SENDING,
        last_attempt_at=long_ago,
        handed_at=long_ago if handed else None,
        sent_at=None,
    )


def test_worker_killed_before_the_handoff_is_sent_again_after_it_never(org, rep, lead):
    first, second = send(rep, lead), send(rep, lead, subject="Again")
    mail.outbox.clear()
    with tenant_scope(org):
        _crashed(first, handed=False)
        _crashed(second, handed=True)
        sweep(org)  # the beat pass settles and re-enqueues
        first.refresh_from_db()
        second.refresh_from_db()
    assert first.status == DirectEmailStatus.SENT
    assert second.status == DirectEmailStatus.UNCONFIRMED
    assert [m.subject for m in mail.outbox] == [first.subject]


def test_smtp_outage_defers_then_delivers_never_drops(org, rep, lead, settings):
    settings.NURTURE_RETRY_BASE_SECONDS = 60
    down = TransientSendError("421 try later", unreachable=True)
    with mock.patch("nurture.channels.email.deliver", side_effect=down):
        email = send(rep, lead)
    with tenant_scope(org):
        email.refresh_from_db()
        assert email.status == DirectEmailStatus.DEFERRED and "421" in email.error
        assert email.next_attempt_at > timezone.now()
        assert not mail.outbox
        sweep(org)  # the backoff is not over: nothing happens
        email.refresh_from_db()
        assert email.status == DirectEmailStatus.DEFERRED
        sweep(org, now=email.next_attempt_at + dt.timedelta(seconds=1))
        email.refresh_from_db()
    assert email.status == DirectEmailStatus.SENT and email.attempts == 2
    assert len(mail.outbox) == 1


def test_outage_longer_than_the_retry_window_fails_with_the_reason(org, rep, lead, settings):
    settings.NURTURE_RETRY_FOR_SECONDS = 0
    with mock.patch.object(EmailChannel, "deliver", side_effect=TransientSendError("421 busy")):
        email = send(rep, lead)
    with tenant_scope(org):
        email.refresh_from_db()
    assert email.status == DirectEmailStatus.FAILED and "421 busy" in email.error


def test_merge_fields_are_validated_and_lead_data_is_escaped(org, rep, lead):
    with tenant_scope(org):
        type(lead).objects.filter(pk=lead.pk).update(first_name=HOSTILE)
        lead.refresh_from_db()
        draft = direct.direct_render(
            lead=lead, organization=org, subject="Hi", body="{{ first_name }}"
        )
        with pytest.raises(TemplateInvalid):
            direct.direct_render(lead=lead, organization=org, subject="Hi", body="{{ lead.owner }}")
    assert "<script>" not in draft.html and "&lt;script&gt;" in draft.html
    assert draft.text == HOSTILE  # the text part is plain text, as typed


def test_compose_page_previews_in_an_escaped_srcdoc_and_sends(org, rep, lead, client_for):
    with tenant_scope(org):
        type(lead).objects.filter(pk=lead.pk).update(first_name=HOSTILE)
    client = client_for(rep)
    url = compose_url(org, lead.pk)
    page = client.get(url)
    assert page.status_code == 200 and b'data-testid="email-compose"' in page.content
    data = {"subject": "Hi {{ first_name }}", "body": "Dear {{ first_name }}", "action": "preview"}
    preview = client.post(url, data)
    html = preview.content.decode()
    assert preview.status_code == 200
    assert "<script>alert(1)" not in html and "onerror=alert(2)>" not in html
    # In srcdoc the email's own markup is escaped once more: the lead's text twice.
    assert 'srcdoc="&lt;p&gt;Dear &amp;lt;script&amp;gt;' in html
    with committed():
        sent = client.post(url, {**data, "action": "send"})
    assert sent.status_code == 302
    with tenant_scope(org):
        assert DirectEmail.objects.filter(lead=lead, status=DirectEmailStatus.SENT).count() == 1
    detail = client.get(sent["Location"])
    assert b'data-testid="timeline-email"' in detail.content
    assert b"<script>alert(1)" not in detail.content


def test_bad_merge_field_is_a_form_error_and_nothing_is_sent(org, rep, lead, client_for):
    response = client_for(rep).post(
        compose_url(org, lead.pk), {"subject": "Hi", "body": "{{ secret }}", "action": "send"}
    )
    assert response.status_code == 400 and b"compose-error" in response.content
    with tenant_scope(org):
        assert not DirectEmail.objects.exists() and not Activity.objects.exists()


def test_another_reps_lead_and_another_orgs_lead_are_404(
    org, other_org, rep, lead, make_member, client_for
):
    other_rep = make_member(org, Role.SALES_REP)
    with tenant_scope(org):
        theirs = LeadFactory(organization=org, owner=other_rep)
    with tenant_scope(other_org):
        foreign = LeadFactory(organization=other_org)
    client = client_for(rep)
    for lead_id in (theirs.pk, foreign.pk):
        assert client.get(compose_url(org, lead_id)).status_code == 404
        post = client.post(
            compose_url(org, lead_id), {"subject": "x", "body": "y", "action": "send"}
        )
        assert post.status_code == 404
    with tenant_scope(org), pytest.raises(direct.NotYourLead):
        direct.direct_email_send(lead=theirs, actor=rep, subject="x", body="y")
    # Nor may another organization's admin, whatever scope is active.
    other_admin = make_member(other_org, Role.ADMIN)
    with tenant_scope(org), pytest.raises(direct.NotYourLead):
        direct.direct_email_send(lead=lead, actor=other_admin, subject="x", body="y")
    with tenant_scope(org):
        assert not DirectEmail.objects.exists()


def test_do_not_email_lead_is_refused(org, rep, lead):
    with tenant_scope(org):
        type(lead).objects.filter(pk=lead.pk).update(do_not_email=True)
        with pytest.raises(direct.DirectEmailError):
            direct.direct_email_send(lead=lead, actor=rep, subject="x", body="y")


def test_emailing_the_lead_is_its_first_touch(org, rep, lead):
    with tenant_scope(org):
        assignment = AssignmentFactory(lead=lead, membership=rep)
        assert assignment.first_touched_at is None
    email = send(rep, lead)
    with tenant_scope(org):
        assignment.refresh_from_db()
    assert assignment.first_touched_at == email.queued_at


def test_compose_page_lists_the_leads_emails_with_their_status(org, rep, lead, client_for):
    with mock.patch.object(EmailChannel, "deliver", side_effect=TransientSendError("421 busy")):
        send(rep, lead, subject="Deferred one")
    send(rep, lead, subject="Delivered one")
    page = client_for(rep).get(compose_url(org, lead.pk)).content.decode()
    assert page.count('data-testid="sent-status"') == 2
    assert "Deferred" in page and "421 busy" in page and "Delivered one" in page


@pytest.mark.parametrize("n", [1, 6])
def test_compose_page_runs_a_constant_number_of_queries(
    org, rep, lead, client_for, django_assert_num_queries, n
):
    for i in range(n):
        send(rep, lead, subject=f"Note {i}")
    client = client_for(rep)
    client.get(compose_url(org, lead.pk))  # warm the session and the per-process caches
    with django_assert_num_queries(QUERIES_COMPOSE_PAGE):
        response = client.get(compose_url(org, lead.pk))
    assert response.content.count(b'data-testid="sent-status"') == n


def test_channel_overrides_on_both_mime_paths_with_no_header_injection(org, rep, lead):
    """The fast SMTP writer (smtp_bytes) and the email package (build_email)
    give the same From and Reply-To; a line break in a rep's name never makes
    a header of its own."""
    from email import message_from_bytes, policy

    from nurture.channels.email import build_email, smtp_bytes

    email = send(rep, lead)
    name = "Ann\r\nBcc: victim@x.example (Acme)"
    fast = message_from_bytes(
        smtp_bytes(email, from_name=name, reply_to=email.reply_to), policy=policy.default
    )
    slow = build_email(email, from_name=name, reply_to=email.reply_to).message()
    for parsed in (fast, slow):
        assert parseaddr(str(parsed["From"]))[1] == "sales@acme.example"
        assert str(parsed["Reply-To"]) == email.reply_to
        assert parsed["Bcc"] is None
        assert parsed["Message-ID"] == email.message_id
    # Without the overrides the row's own sender and reply address go out.
    plain = build_email(email).message()
    assert plain["From"] == "sales@acme.example" and plain["Reply-To"] == email.reply_to
