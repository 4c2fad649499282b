"""Sequences: settings validation, step order, enrollment controls, the report."""

import pytest
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from nurture import selectors, services
from nurture.models import EmailMessage, Enrollment, SequenceStep, Unsubscribe
from tests.factories import CaptureFormFactory, EmailTemplateFactory, NurtureListFactory

pytestmark = pytest.mark.django_db


def test_sequence_settings_are_validated_and_foreign_ids_refused(org, other_org, admin):
    with tenant_scope(other_org):
        foreign_list = NurtureListFactory(organization=other_org)
    with tenant_scope(org):
        form = CaptureFormFactory(organization=org)
        good = {
            "name": "Onboarding",
            "is_active": True,
            "entry_triggers": [{"type": "form", "form_id": form.pk}, {"type": "recycled"}],
            "exit_on": ["mql", "replied"],
            "send_window": {"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"},
            "timezone": "Europe/Berlin",
        }
        sequence = services.sequence_save(data=good, actor=admin)
        assert sequence.entry_triggers[0] == {"type": "form", "form_id": form.pk}
        bad_cases = [
            ({"entry_triggers": [{"type": "joins_list", "list_id": foreign_list.pk}]}, "list"),
            ({"exit_on": ["never"]}, "exit condition"),
            ({"send_window": {"days": [0], "start": "18:00", "end": "09:00"}}, "close after"),
            ({"timezone": "Mars/Olympus"}, "time zone"),
            ({"name": "onboarding"}, "already a sequence"),
        ]
        for change, needle in bad_cases:
            with pytest.raises(services.SequenceInvalid, match=needle):
                services.sequence_save(data={**good, "name": "Other", **change}, actor=admin)


def test_steps_append_move_and_delete_keep_positions_and_enrollments(
    org, other_org, make_sequence, make_leads
):
    sequence = make_sequence(org, delays=[(0, 0), (1, 0), (2, 0)])
    (lead,) = make_leads(org, 1)
    with tenant_scope(org):
        first, second, third = SequenceStep.objects.filter(sequence=sequence)
        services.enrollment_start(sequence=sequence, lead_ids=[lead.pk])
        Enrollment.objects.update(current_step=3)  # waiting for the third step
        services.step_move(step=third, direction="up")
        order = list(SequenceStep.objects.filter(sequence=sequence).values_list("pk", flat=True))
        assert order == [first.pk, third.pk, second.pk]
        services.step_delete(step=first)
        positions = list(
            SequenceStep.objects.filter(sequence=sequence).values_list("pk", "position")
        )
        assert positions == [(third.pk, 1), (second.pk, 2)]
        assert Enrollment.objects.get().current_step == 2  # still the step it was waiting for
        added = services.step_save(
            sequence=sequence, template=EmailTemplateFactory(organization=org), delay_days=4
        )
        assert added.position == 3
        with pytest.raises(services.SequenceInvalid):
            services.step_save(sequence=sequence, template=added.template, delay_days=9999)


def test_pause_resume_stop(org, other_org, make_sequence, make_leads):
    sequence = make_sequence(org)
    (lead,) = make_leads(org, 1)
    with tenant_scope(org):
        services.enrollment_start(sequence=sequence, lead_ids=[lead.pk])
        enrollment = Enrollment.objects.get()
        assert services.enrollment_pause(enrollment=enrollment).status == "paused"
        assert services.dispatch_due(organization_id=org.pk) == 0  # paused: nothing due
        assert services.enrollment_resume(enrollment=enrollment).status == "active"
        stopped = services.enrollment_stop(enrollment=enrollment)
        assert (stopped.status, stopped.exit_reason) == ("stopped", "stopped")
        with pytest.raises(services.EnrollmentError):
            services.enrollment_resume(enrollment=enrollment)
        # Stopped: a person may enroll the lead again; a trigger would not.
        assert services.enrollment_start(sequence=sequence, lead_ids=[lead.pk])["enrolled"] == 1
    with tenant_scope(other_org):
        assert not Enrollment.objects.exists()


def test_sequence_report_counts_per_step_in_two_queries(
    org, other_org, make_sequence, make_leads, django_assert_num_queries
):
    sequence = make_sequence(org, delays=[(0, 0), (1, 0)])
    leads = make_leads(org, 4)
    with tenant_scope(org):
        services.enrollment_start(sequence=sequence, lead_ids=[x.pk for x in leads])
        services.dispatch_due(organization_id=org.pk)
        now = timezone.now()
        messages = list(EmailMessage.objects.order_by("pk"))
        EmailMessage.objects.update(status="sent", sent_at=now)
        EmailMessage.objects.filter(pk=messages[0].pk).update(opened_at=now, clicked_at=now)
        EmailMessage.objects.filter(pk=messages[1].pk).update(opened_at=now)
        EmailMessage.objects.filter(pk=messages[2].pk).update(status="bounced")
        Unsubscribe.objects.create(
            organization=org, email="x@y.z", occurred_at=now, message=messages[3]
        )
        Lead.objects.filter(pk=messages[0].lead_id).update(mql_eligible=True, mql_changed_at=now)
        with django_assert_num_queries(2):
            report = selectors.sequence_report(sequence=sequence)
    first, second = report
    assert (first["sent"], first["delivered"], first["opened"], first["clicked"]) == (4, 3, 2, 1)
    assert (first["bounced"], first["unsubscribed"], first["converted"]) == (1, 1, 1)
    assert second["sent"] == 0 and second["open_rate"] == 0.0
