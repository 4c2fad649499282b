"""The dispatcher drives any channel (nurture.channels): a fake one, registered
here, goes through due step → compose → deliver → ledger → advance, and its
failures are retried (transient) or fail the send (permanent)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from nurture import channels, services
from nurture.models import EmailMessage, Enrollment, EnrollmentStatus, MessageStatus

pytestmark = pytest.mark.django_db


class Bounce(Exception):
    pass


class Later(Exception):
    pass


class FakeChannel:
    """Records what it composes and delivers; `script` says how each delivery ends."""

    name = "fake"

    def __init__(self):
        self.composed: list[tuple[int, int]] = []
        self.delivered: list[str] = []
        self.script: list[str] = []

    def compose(self, send, lead, step):
        self.composed.append((lead.pk, step.position))
        return EmailMessage(
            organization_id=send.organization.pk,
            lead=lead,
            enrollment=send.enrollment,
            step=step,
            to_email=f"lead-{lead.pk}",
            from_email="fake",
            subject=f"fake step {step.position}",
            html="",
            text=f"step {step.position}",
            message_id=f"<fake-{send.enrollment.pk}-{step.position}@test>",
            queued_at=send.now,
            next_attempt_at=send.now,
            enqueued_at=send.now,
        )

    def deliver(self, message, *, on_handed):
        outcome = self.script.pop(0) if self.script else "ok"
        if outcome == "transient":
            raise Later("try later")
        if outcome == "permanent":
            raise Bounce("no such number")
        on_handed()
        self.delivered.append(message.subject)
        return channels.DeliveryResult()

    def classify(self, exc):
        if isinstance(exc, Later):
            return channels.Verdict("transient")
        if isinstance(exc, Bounce):
            return channels.Verdict("permanent")
        return None


@pytest.fixture
def fake(monkeypatch):
    channel = FakeChannel()
    monkeypatch.setitem(channels.FACTORIES, "fake", lambda: channel)
    monkeypatch.setitem(channels.REGISTRY, "fake", channel)
    monkeypatch.setattr(channels, "DEFAULT", "fake")  # every step goes out on it
    return channel


def start(org, sequence, lead):
    with tenant_scope(org):
        services.enrollment_start(sequence=sequence, lead_ids=[lead.pk])


def dispatch(org, capture, now=None):
    with tenant_scope(org), capture(execute=True):
        return services.dispatch_due(organization_id=org.pk, now=now)


def state(org):
    with tenant_scope(org):
        message = EmailMessage.objects.order_by("-pk").first()
        enrollment = Enrollment.objects.get()
        return message, enrollment


def test_the_dispatcher_drives_any_channel(
    fake, org, other_org, make_leads, make_sequence, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    (lead,) = make_leads(org, 1)
    start(org, make_sequence(org, delays=[(0, 0), (1, 0)]), lead)
    (other,) = make_leads(other_org, 1)
    start(other_org, make_sequence(other_org), other)

    assert dispatch(org, capture) == 1
    assert fake.composed == [(lead.pk, 1)] and fake.delivered == ["fake step 1"]
    assert mail.outbox == []  # nothing went out as email
    message, enrollment = state(org)
    assert message.status == MessageStatus.SENT and message.handed_at is not None
    assert (enrollment.current_step, enrollment.awaiting_send) == (2, False)
    assert enrollment.status == EnrollmentStatus.ACTIVE

    assert dispatch(org, capture, now=timezone.now() + timedelta(days=1, minutes=1)) == 1
    assert fake.delivered == ["fake step 1", "fake step 2"]
    message, enrollment = state(org)
    assert message.status == MessageStatus.SENT
    assert enrollment.status == EnrollmentStatus.COMPLETED
    _message, other_enrollment = state(other_org)  # the other tenant was not dispatched
    assert _message is None and other_enrollment.current_step == 1


def test_a_transient_channel_failure_is_retried(
    fake, org, make_leads, make_sequence, django_capture_on_commit_callbacks
):
    (lead,) = make_leads(org, 1)
    start(org, make_sequence(org), lead)
    fake.script = ["transient"]

    dispatch(org, django_capture_on_commit_callbacks)
    message, enrollment = state(org)
    assert (message.status, message.error, message.attempts) == (
        MessageStatus.QUEUED,
        "try later",
        1,
    )
    assert message.next_attempt_at > timezone.now() and enrollment.awaiting_send
    assert fake.delivered == []

    # The dispatcher's next pass, once the backoff is over, sends it again.
    dispatch(org, django_capture_on_commit_callbacks, now=timezone.now() + timedelta(hours=1))
    message, enrollment = state(org)
    assert (message.status, message.attempts) == (MessageStatus.SENT, 2)
    assert fake.delivered == ["fake step 1"]
    assert enrollment.status == EnrollmentStatus.COMPLETED


def test_a_permanent_channel_failure_fails_the_send(
    fake, org, make_leads, make_sequence, django_capture_on_commit_callbacks
):
    (lead,) = make_leads(org, 1)
    start(org, make_sequence(org, delays=[(0, 0), (1, 0)]), lead)
    fake.script = ["permanent"]

    dispatch(org, django_capture_on_commit_callbacks)
    message, enrollment = state(org)
    assert (message.status, message.error) == (MessageStatus.FAILED, "no such number")
    assert (enrollment.status, enrollment.exit_reason) == (EnrollmentStatus.EXITED, "send_failed")
    assert fake.delivered == []


def test_an_error_the_channel_does_not_classify_propagates(
    fake, org, make_leads, make_sequence, django_capture_on_commit_callbacks
):
    (lead,) = make_leads(org, 1)
    start(org, make_sequence(org), lead)
    fake.deliver = lambda message, *, on_handed: (_ for _ in ()).throw(RuntimeError("boom"))

    with pytest.raises(RuntimeError, match="boom"):
        dispatch(org, django_capture_on_commit_callbacks)
    message, _enrollment = state(org)
    assert message.status == MessageStatus.SENDING  # left for the sweep, as a dead worker's
