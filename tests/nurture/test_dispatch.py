"""Dispatch and send: consent, exactly once, throttle, retries, bounces, send windows."""

import smtplib
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from nurture import services
from nurture.models import (
    EmailMessage,
    Enrollment,
    EnrollmentStatus,
    MessageStatus,
    Suppression,
)
from nurture.services.dispatch import has_due_work
from nurture.services.enrollments import window_start
from nurture.services.sends import messages_send
from nurture.tasks import send_messages
from tests.factories import verified_sender

pytestmark = pytest.mark.django_db


def enroll(org, sequence, leads):
    with tenant_scope(org):
        return services.enrollment_start(sequence=sequence, lead_ids=[lead.pk for lead in leads])


def dispatch(org, django_capture_on_commit_callbacks, **kwargs):
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        return services.dispatch_due(organization_id=org.pk, **kwargs)


def test_three_steps_are_sent_in_order_once_each_with_headers(
    org, other_org, make_leads, make_sequence, django_capture_on_commit_callbacks
):
    sequence = make_sequence(org, delays=[(0, 0), (0, 1), (2, 0)])
    (lead,) = make_leads(org, 1, first_name="Ada", company_name="Initech")
    other_sequence = make_sequence(other_org)
    make_leads(other_org, 2)
    assert enroll(org, sequence, [lead])["enrolled"] == 1

    assert dispatch(org, django_capture_on_commit_callbacks) == 1
    assert dispatch(org, django_capture_on_commit_callbacks) == 0  # step 2 is an hour away
    later = timezone.now() + timedelta(hours=1, minutes=1)
    assert dispatch(org, django_capture_on_commit_callbacks, now=later) == 1
    assert dispatch(org, django_capture_on_commit_callbacks, now=later + timedelta(days=2)) == 1
    assert [m.subject for m in mail.outbox] == [
        "Step 1 for Ada",
        "Step 2 for Ada",
        "Step 3 for Ada",
    ]
    first = mail.outbox[0]
    assert first.to == [lead.email]
    assert first.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first.extra_headers["List-Unsubscribe"].startswith("<http")
    assert "/e/u/" in first.extra_headers["List-Unsubscribe"]
    html = first.alternatives[0][0]
    assert "Hi Ada of Initech" in html and "/e/o/" in html and "/e/c/" in html
    assert "https://example.com/step1" not in html  # rewritten to the click tracker
    assert "Unsubscribe: http" in first.body  # plain-text part with footer
    with tenant_scope(org):
        rows = list(EmailMessage.objects.order_by("pk"))
        assert [m.status for m in rows] == [MessageStatus.SENT] * 3
        assert rows[0].links == ["https://example.com/step1"]
        assert first.extra_headers["Message-ID"] == rows[0].message_id
        enrollment = Enrollment.objects.get()
        assert enrollment.status == EnrollmentStatus.COMPLETED
    with tenant_scope(other_org):
        assert not EmailMessage.objects.exists()
        assert not Enrollment.objects.filter(sequence=other_sequence).exists()


def test_retried_and_duplicate_sends_skip_sent_messages(
    org, other_org, make_leads, make_sequence, django_capture_on_commit_callbacks
):
    sequence = make_sequence(org)
    enroll(org, sequence, make_leads(org, 3))
    dispatch(org, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 3
    with tenant_scope(org):
        ids = list(EmailMessage.objects.values_list("pk", flat=True))
        # A redelivered task, a duplicate and the stale-message sweep: nothing is sent again.
        send_messages.apply(kwargs={"organization_id": org.pk, "message_ids": ids})
        assert services.message_send(message_id=ids[0]) == "skipped"
        Enrollment.objects.update(status=EnrollmentStatus.ACTIVE, current_step=1)
        Enrollment.objects.update(next_send_at=timezone.now())
    # Even if an enrollment were pointed back at a step it got, the unique
    # (enrollment, step) row stops a second email.
    dispatch(org, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 3
    with tenant_scope(org):
        assert EmailMessage.objects.count() == 3


def test_consent_is_checked_when_enrolling_dispatching_and_sending(
    org, other_org, make_leads, make_sequence, django_capture_on_commit_callbacks
):
    sequence = make_sequence(org)
    ok, unsubscribed_later, suppressed = make_leads(org, 3)
    (no_opt_in,) = make_leads(org, 1, email_opt_in=False)
    (dne,) = make_leads(org, 1, do_not_email=True)
    with tenant_scope(org):
        Suppression.objects.create(organization=org, email=suppressed.email, reason="manual")
        counts = services.enrollment_start(
            sequence=sequence,
            lead_ids=[ok.pk, unsubscribed_later.pk, suppressed.pk, no_opt_in.pk, dne.pk, 10**9],
        )
    assert counts == {"enrolled": 2, "already": 0, "no_consent": 3, "not_found": 1}
    with tenant_scope(org):
        unsubscribed_later.do_not_email = True
        unsubscribed_later.save()
    dispatch(org, django_capture_on_commit_callbacks)
    assert [m.to for m in mail.outbox] == [[ok.email]]
    with tenant_scope(org):
        gone = Enrollment.objects.get(lead=unsubscribed_later)
        assert (gone.status, gone.exit_reason) == (EnrollmentStatus.EXITED, "unsubscribed")


def test_unsubscribe_between_dispatch_and_send_wins(
    org, other_org, make_leads, make_sequence, django_capture_on_commit_callbacks
):
    sequence = make_sequence(org)
    (lead,) = make_leads(org, 1)
    enroll(org, sequence, [lead])
    with tenant_scope(org):
        services.dispatch_due(organization_id=org.pk)  # on-commit enqueue not run
        message = EmailMessage.objects.get()
        lead.do_not_email = True
        lead.save()
        assert services.message_send(message_id=message.pk) == "failed"
        message.refresh_from_db()
        assert message.status == MessageStatus.FAILED and "unsubscribed" in message.error
    assert mail.outbox == []


def test_throttle_limits_messages_per_minute_per_organization(
    org, other_org, make_leads, make_sequence, django_capture_on_commit_callbacks
):
    verified_sender(org, throttle_per_minute=3)
    enroll(org, make_sequence(org), make_leads(org, 5))
    enroll(other_org, make_sequence(other_org), make_leads(other_org, 4))
    assert dispatch(org, django_capture_on_commit_callbacks) == 3
    assert dispatch(org, django_capture_on_commit_callbacks) == 0  # budget spent this minute
    assert dispatch(other_org, django_capture_on_commit_callbacks) == 4  # not starved
    later = timezone.now() + timedelta(seconds=61)
    assert dispatch(org, django_capture_on_commit_callbacks, now=later) == 2
    assert len(mail.outbox) == 9


def test_transient_errors_retry_then_permanent_and_hard_bounce(
    org, other_org, make_leads, make_sequence, django_capture_on_commit_callbacks
):
    sequence = make_sequence(org, delays=[(0, 0), (1, 0)])
    flaky, rejected, bounced = make_leads(org, 3)
    enroll(org, sequence, [flaky, rejected, bounced])
    with tenant_scope(org):
        services.dispatch_due(organization_id=org.pk)
        by_lead = {m.lead_id: m.pk for m in EmailMessage.objects.all()}
    errors_leads = [flaky, rejected, bounced]
    errors = {
        flaky.email: smtplib.SMTPServerDisconnected("gone"),
        rejected.email: smtplib.SMTPDataError(554, b"Message rejected as spam"),
        bounced.email: smtplib.SMTPRecipientsRefused({bounced.email: (550, b"No such user")}),
    }

    class FailingConnection:
        def send_messages(self, emails):
            raise errors[emails[0].to[0]]

        def close(self):
            pass

    with tenant_scope(org), mock.patch("nurture.channels.email._connection", FailingConnection):
        outcomes = [services.message_send(message_id=by_lead[x.pk]) for x in errors_leads]
    assert outcomes == ["retry", "failed", "bounced"]
    with tenant_scope(org):
        statuses = dict(EmailMessage.objects.values_list("lead_id", "status"))
        assert statuses == {flaky.pk: "queued", rejected.pk: "failed", bounced.pk: "bounced"}
        assert Suppression.objects.filter(email=bounced.email, reason="hard_bounce").exists()
        assert Enrollment.objects.get(lead=bounced).exit_reason == "bounced"
        # A message that failed for good ends its enrollment, never as "completed".
        assert Enrollment.objects.get(lead=rejected).exit_reason == "send_failed"
        waiting = Enrollment.objects.get(lead=flaky)
        assert (waiting.status, waiting.awaiting_send) == (EnrollmentStatus.ACTIVE, True)
        in_two_days = timezone.now() + timedelta(days=2)
        # Step 2 is not dispatched while step 1's email waits for its retry.
        assert services.dispatch_due(organization_id=org.pk, now=in_two_days, requeue=False) == 0
        # The transient one is sent by the retry.
        assert services.message_send(message_id=by_lead[flaky.pk]) == "sent"
        message = EmailMessage.objects.get(pk=by_lead[flaky.pk])
        assert (message.status, message.attempts) == ("sent", 2)
        assert not Enrollment.objects.get(lead=flaky).awaiting_send
        assert services.dispatch_due(organization_id=org.pk, now=in_two_days, requeue=False) == 1
    with tenant_scope(other_org):
        assert not Suppression.objects.exists()


def test_smtp_errors_are_classified():
    from nurture.channels.email import PermanentSendError, TransientSendError, _classify

    assert isinstance(_classify(smtplib.SMTPDataError(451, b"try later")), TransientSendError)
    assert isinstance(_classify(ConnectionRefusedError()), TransientSendError)
    refused = _classify(smtplib.SMTPRecipientsRefused({"a@b.c": (550, b"unknown")}))
    assert isinstance(refused, PermanentSendError) and refused.hard_bounce
    deferred = _classify(smtplib.SMTPRecipientsRefused({"a@b.c": (452, b"full")}))
    assert isinstance(deferred, TransientSendError)


def test_send_window_moves_the_send_to_the_next_opening():
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    window = {"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}
    friday_evening = datetime(2025, 1, 10, 18, 0, tzinfo=berlin)
    assert window_start(friday_evening, window, berlin) == datetime(
        2025, 1, 13, 9, 0, tzinfo=berlin
    )
    inside = datetime(2025, 1, 13, 10, 0, tzinfo=UTC)  # 11:00 in Berlin, a Monday
    assert window_start(inside, window, berlin) == inside
    assert window_start(friday_evening, None, berlin) == friday_evening


def test_test_send_goes_to_the_given_address_only(
    org, other_org, admin, make_leads, django_capture_on_commit_callbacks
):
    (lead,) = make_leads(org, 1, first_name="Grace", email_opt_in=False)
    with tenant_scope(org):
        template = services.template_save(
            data={"name": "T", "subject": "Hi {{ first_name }}", "body_html": "<p>Yo</p>"},
            actor=admin,
        )
        with django_capture_on_commit_callbacks(execute=True):
            message = services.template_test_send(
                template=template, to_email="Admin@Acme.example", lead=lead
            )
        message.refresh_from_db()
    assert message.is_test and message.status == "sent" and message.enrollment_id is None
    assert [(m.to, m.subject) for m in mail.outbox] == [(["admin@acme.example"], "[Test] Hi Grace")]
    with tenant_scope(org), pytest.raises(services.NurtureError):
        services.template_test_send(template=template, to_email="not-an-email")


def test_beat_fans_out_one_dispatch_per_organization_with_due_work(
    org, other_org, make_leads, make_sequence, django_capture_on_commit_callbacks
):
    from nurture.tasks import dispatch_all

    enroll(org, make_sequence(org), make_leads(org, 2))
    enroll(other_org, make_sequence(other_org), make_leads(other_org, 1))
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch_all.apply().get() == 2
    assert len(mail.outbox) == 3
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch_all.apply().get() == 0  # nothing due any more


def test_a_lost_batch_is_requeued_and_only_its_unsent_rows_go_out(
    org, other_org, make_leads, make_sequence, django_capture_on_commit_callbacks
):
    enroll(org, make_sequence(org), make_leads(org, 3))
    enroll(other_org, make_sequence(other_org), make_leads(other_org, 1))
    with tenant_scope(org):
        services.dispatch_due(organization_id=org.pk)  # the send task is lost
        ids = sorted(EmailMessage.objects.values_list("pk", flat=True))
        assert services.message_send(message_id=ids[0]) == "sent"  # before the loss
        later = timezone.now() + timedelta(hours=1)
        assert has_due_work(now=later) and not has_due_work()
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        assert services.requeue_stale(organization_id=org.pk) == 0  # may still be in flight
        assert services.requeue_stale(organization_id=org.pk, now=later) == 2
    assert len(mail.outbox) == 3
    with tenant_scope(org):
        rows = EmailMessage.objects.all()
        assert {(m.status, m.attempts) for m in rows} == {(MessageStatus.SENT, 1)}
    with tenant_scope(other_org):
        assert not EmailMessage.objects.exists()


def test_a_batch_is_read_in_one_query_then_locked_and_marked_per_message(
    org, other_org, make_leads, make_sequence, django_assert_num_queries
):
    enroll(org, make_sequence(org), make_leads(org, 6))
    with tenant_scope(org):
        services.dispatch_due(organization_id=org.pk)
        ids = sorted(EmailMessage.objects.values_list("pk", flat=True))
        # The batch: read and claimed in one short transaction (savepoint, SELECT,
        # UPDATE, release). Per message: marked sent with its enrollment released
        # in one commit — one statement on PostgreSQL, a transaction of two on
        # SQLite (over SMTP one more statement commits the hand-off). Plus one
        # read of the organization's sender identity per batch.
        per_message = 1 if connection.vendor == "postgresql" else 4
        for batch in (ids[:2], ids[2:]):
            with django_assert_num_queries(5 + per_message * len(batch)):
                outcomes = messages_send(message_ids=batch)
            assert set(outcomes.values()) == {"sent"}
        assert set(messages_send(message_ids=ids).values()) == {"skipped"}
    assert len(mail.outbox) == 6


def test_tokens_are_djangos_signed_tokens():
    import time

    from django.core import signing

    from nurture import tokens

    with mock.patch("time.time", return_value=float(int(time.time()))):
        token = tokens.make(tokens.CLICK, organization_id=4, message_id="<a.4@b.example>", link=2)
        expected = signing.TimestampSigner(salt=tokens.CLICK).sign_object([4, "<a.4@b.example>", 2])
    assert token == expected
    assert tokens.read(tokens.CLICK, token) == tokens.TokenData(4, "<a.4@b.example>", 2)
    with pytest.raises(tokens.BadToken):
        tokens.read(tokens.OPEN, token)  # another purpose's salt


@pytest.mark.parametrize(
    ("subject", "html"),
    [
        ("Hello Ada, your guide", '<p>Hi</p>\n.<p><a href="https://x.example">x</a></p>'),
        ("Grüße aus Köln — " * 6, "<p>Größe: 5 €</p>"),
    ],
)
def test_direct_smtp_bytes_parse_like_djangos_message(subject, html):
    from email import message_from_bytes, policy
    from types import SimpleNamespace

    from nurture.channels import email as sending

    message = SimpleNamespace(
        organization_id=3, message_id="<m.3@b.example>", subject=subject, text="Hi\n\nbye é",
        html=html, from_email="Bench Ltd <news@bench.example>", to_email="ada@b.example",
    )  # fmt: skip
    ours = message_from_bytes(sending.smtp_bytes(message), policy=policy.default)
    django = message_from_bytes(
        sending.build_email(message).message().as_bytes(linesep="\r\n"), policy=policy.default
    )
    for header in ("Subject", "From", "To", "Message-ID", "List-Unsubscribe-Post"):
        assert str(ours[header]).strip() == str(django[header]).strip(), header
    assert ours["List-Unsubscribe"].startswith("<http") and "/e/u/" in ours["List-Unsubscribe"]
    for part in ("plain", "html"):
        assert ours.get_body((part,)).get_content() == django.get_body((part,)).get_content()
    # A line over RFC 5322's 998 bytes needs quoted-printable: left to the email package.
    message.html = "<p>" + "x" * 1000 + "</p>"
    assert sending.smtp_bytes(message) is None


def test_a_first_send_failure_in_a_short_outage_is_retried_within_a_minute_of_its_end():
    from django.conf import settings

    from nurture.services.sends import retry_backoff

    # Retries go out at the first dispatch beat after their backoff (issue #12: a
    # 30 s "451" outage used to take up to 2 min to recover: 60 s + a 60 s beat).
    beat = settings.CELERY_BEAT_SCHEDULE["nurture-dispatch"]
    wait = retry_backoff(1).total_seconds() + beat["schedule"]
    assert wait <= 60 and beat["options"]["expires"] < beat["schedule"]


def test_transient_failures_back_off_and_give_up_only_after_the_retry_window(
    org, other_org, make_leads, make_sequence, settings
):
    from nurture.services.sends import retry_backoff

    settings.NURTURE_RETRY_BASE_SECONDS, settings.NURTURE_RETRY_MAX_SECONDS = 60, 3600
    assert [retry_backoff(n).total_seconds() for n in (1, 2, 3, 7, 8, 50)] == [
        60, 120, 240, 3600, 3600, 3600,
    ]  # fmt: skip
    enroll(org, make_sequence(org), make_leads(org, 1))
    with tenant_scope(org):
        services.dispatch_due(organization_id=org.pk)
        message = EmailMessage.objects.get()

    def deferred(*args, **kwargs):
        raise smtplib.SMTPResponseException(451, b"4.3.0 Try again later")

    with tenant_scope(org), mock.patch("nurture.channels.email._send", deferred):
        for _ in range(7):  # more than the old five attempts
            assert services.message_send(message_id=message.pk) == "retry"
        message.refresh_from_db()
        assert (message.status, message.attempts) == (MessageStatus.QUEUED, 7)
        assert "451" in message.error and message.next_attempt_at > timezone.now()
        assert Enrollment.objects.get().status == EnrollmentStatus.ACTIVE
        # 48 h after it was queued, the next transient failure is final.
        EmailMessage.objects.update(queued_at=timezone.now() - timedelta(hours=48))
        assert services.message_send(message_id=message.pk) == "failed"
        message.refresh_from_db()
        assert message.error.startswith("Gave up after 8 attempts over 48 h: 451")
        enrollment = Enrollment.objects.get()
        assert (enrollment.status, enrollment.exit_reason) == ("exited", "send_failed")
    with tenant_scope(other_org):
        assert not EmailMessage.objects.exists()


def test_the_sweep_settles_a_dead_workers_messages_and_requeues_due_retries(
    org, other_org, make_leads, make_sequence, django_capture_on_commit_callbacks
):
    enroll(org, make_sequence(org), make_leads(org, 4))
    enroll(other_org, make_sequence(other_org), make_leads(other_org, 1))
    with tenant_scope(org):
        services.dispatch_due(organization_id=org.pk)  # its send task is lost
        handed, claimed, retry, fresh = EmailMessage.objects.order_by("pk")
        long_ago = timezone.now() - timedelta(hours=1)
        EmailMessage.objects.filter(pk__in=[handed.pk, claimed.pk]).update(
            status=MessageStatus.SENDING, attempts=1, last_attempt_at=long_ago
        )
        EmailMessage.objects.filter(pk=handed.pk).update(handed_at=long_ago)
        EmailMessage.objects.filter(pk=retry.pk).update(
            attempts=2, enqueued_at=long_ago, next_attempt_at=timezone.now() - timedelta(seconds=1)
        )
        with django_capture_on_commit_callbacks(execute=True):
            assert services.requeue_stale(organization_id=org.pk) == 2  # claimed, retry
        statuses = dict(EmailMessage.objects.values_list("pk", "status"))
        assert statuses == {
            handed.pk: MessageStatus.UNCONFIRMED,  # probably delivered: not resent
            claimed.pk: MessageStatus.SENT,  # never reached the server: sent now
            retry.pk: MessageStatus.SENT,
            fresh.pk: MessageStatus.QUEUED,  # its task may still be on its way
        }
        assert len(mail.outbox) == 2
        assert handed.message_id not in {m.extra_headers["Message-ID"] for m in mail.outbox}
        # The unconfirmed email counts as sent for its enrollment.
        assert Enrollment.objects.get(lead=handed.lead).status == EnrollmentStatus.COMPLETED
    with tenant_scope(other_org):
        assert not EmailMessage.objects.exists()  # its dispatcher never ran
        assert Enrollment.objects.get().status == EnrollmentStatus.ACTIVE
