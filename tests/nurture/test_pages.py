"""Nurture pages: lists (static, dynamic, members, add/remove, bulk add),
templates (editor, preview, test send, bad input), sequences (settings, steps,
enrolling, enrollments, report) and the outbox — their database effects, their
messages for bad input, the tenant wall and pinned query counts."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from leads.models import ScoreBand
from nurture.models import (
    EmailMessage,
    EmailTemplate,
    Enrollment,
    EnrollmentStatus,
    ListKind,
    ListMembership,
    MessageStatus,
    NurtureList,
    Sequence,
    SequenceStep,
)
from nurture.services import lists as list_services
from tests.factories import (
    EmailMessageFactory,
    EmailTemplateFactory,
    EnrollmentFactory,
    LeadFactory,
    NurtureListFactory,
    SequenceFactory,
    verified_sender,
)

pytestmark = pytest.mark.django_db


def url(name: str, org, **kwargs) -> str:
    return reverse(f"nurture:{name}", kwargs={"org_slug": org.slug, **kwargs})


def flashed(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


def static_list(org, leads=(), name="Webinar attendees"):
    with tenant_scope(org):
        nurture_list = NurtureListFactory(organization=org, name=name)
        list_services.list_add_leads(nurture_list=nurture_list, lead_ids=[x.pk for x in leads])
        nurture_list.refresh_from_db()
    return nurture_list


def pinned(django_assert_num_queries, client, path: str, expected: int, grow) -> None:
    """The page runs `expected` queries, and still does after grow() adds rows."""
    with django_assert_num_queries(expected):
        assert client.get(path).status_code == 200
    grow()
    with django_assert_num_queries(expected):
        assert client.get(path).status_code == 200


# --- Lists ---------------------------------------------------------------------------


def test_list_index_shows_members_and_growth_in_constant_queries(
    admin_client, org, other_org, make_leads, django_assert_num_queries
):
    static_list(org, make_leads(org, 3), name="Webinar attendees")
    static_list(other_org, make_leads(other_org, 2), name="Globex secret list")
    response = admin_client.get(url("list_list", org))
    html = response.content.decode()
    assert response.templates[0].name == "nurture/list_list.html"
    assert "Webinar attendees" in html and "Globex secret list" not in html
    assert 'data-testid="total-members">3<' in html
    assert 'data-chart="growth-' in html

    def grow():
        for i in range(5):
            static_list(org, make_leads(org, 2), name=f"More {i}")

    pinned(django_assert_num_queries, admin_client, url("list_list", org), 5, grow)


def test_empty_lists_page_invites_to_create_one(admin_client, org):
    html = admin_client.get(url("list_list", org)).content.decode()
    assert "No lists yet" in html and url("list_create", org) in html


def test_create_a_static_list_add_by_email_and_remove(admin_client, org, other_org, make_leads):
    ana, bo = make_leads(org, 2)
    (foreign,) = make_leads(other_org, 1)
    response = admin_client.post(url("list_create", org), {"name": "Newsletter", "kind": "static"})
    with tenant_scope(org):
        nurture_list = NurtureList.objects.get(name="Newsletter")
    assert response.status_code == 302
    assert response["Location"] == url("list_detail", org, list_id=nurture_list.pk)

    pasted = f"{ana.email.upper()}, {foreign.email}\nnobody@nowhere.example"
    response = admin_client.post(
        url("list_add", org, list_id=nurture_list.pk), {"emails": pasted, "lead_ids": [bo.pk]}
    )
    assert response.status_code == 302
    notes = flashed(response)
    assert "2 leads added to Newsletter." in notes
    assert any("2 addresses matched no lead" in n and "nobody@nowhere.example" in n for n in notes)
    with tenant_scope(org):
        nurture_list.refresh_from_db()
        members = set(
            ListMembership.objects.filter(list=nurture_list, removed_at__isnull=True).values_list(
                "lead_id", flat=True
            )
        )
    assert members == {ana.pk, bo.pk} and nurture_list.member_count == 2

    page = admin_client.get(url("list_detail", org, list_id=nurture_list.pk)).content.decode()
    table = page.split('data-testid="member-table"')[1]
    assert ana.email in table and bo.email in table and foreign.email not in table

    response = admin_client.post(
        url("list_remove", org, list_id=nurture_list.pk), {"lead_ids": [ana.pk, foreign.pk]}
    )
    assert "1 lead removed." in flashed(response)
    with tenant_scope(org):
        nurture_list.refresh_from_db()
        row = ListMembership.objects.get(list=nurture_list, lead=ana)
    assert row.removed_at is not None and nurture_list.member_count == 1


def test_pasting_garbage_changes_nothing(admin_client, org, other_org, make_leads):
    nurture_list = static_list(org, make_leads(org, 1))
    response = admin_client.post(
        url("list_add", org, list_id=nurture_list.pk), {"emails": "not-an-email, also bad"}
    )
    assert response.status_code == 302
    assert any("Not email addresses" in n for n in flashed(response))
    response = admin_client.post(url("list_add", org, list_id=nurture_list.pk), {})
    assert any("Paste at least one email" in n for n in flashed(response))
    response = admin_client.post(url("list_remove", org, list_id=nurture_list.pk), {})
    assert "Select at least one lead." in flashed(response)
    with tenant_scope(org):
        assert ListMembership.objects.count() == 1


def test_a_dynamic_list_is_a_saved_filter(admin_client, org, other_org):
    with tenant_scope(org):
        hot = LeadFactory(organization=org, band=ScoreBand.HOT, score=120, stage="recycled")
        LeadFactory(organization=org, band=ScoreBand.HOT, score=110, stage="mql")
        LeadFactory(organization=org, band=ScoreBand.COLD, score=5, stage="recycled")
    with tenant_scope(other_org):
        LeadFactory(organization=other_org, band=ScoreBand.HOT, score=150, stage="recycled")
    data = {
        "name": "Hot recycled",
        "kind": "dynamic",
        "band": "hot",
        "min_score": "100",
        "stage": ["recycled", "lost"],
        "mql": "unknown",
    }
    response = admin_client.post(url("list_create", org), data)
    assert response.status_code == 302
    with tenant_scope(org):
        nurture_list = NurtureList.objects.get(name="Hot recycled")
        members = list(
            ListMembership.objects.filter(list=nurture_list).values_list("lead_id", flat=True)
        )
    assert nurture_list.kind == ListKind.DYNAMIC
    assert nurture_list.filter == {"band": "hot", "min_score": 100, "stage": ["recycled", "lost"]}
    assert members == [hot.pk]

    html = admin_client.get(url("list_detail", org, list_id=nurture_list.pk)).content.decode()
    assert 'data-testid="filter-summary"' in html and "Recycled, Lost" in html
    assert 'data-testid="add-leads"' not in html  # members come from the filter

    response = admin_client.post(url("list_refresh", org, list_id=nurture_list.pk))
    assert "Hot recycled re-evaluated: 1 members." in flashed(response)


def test_a_dynamic_list_needs_a_condition_and_valid_values(admin_client, org, other_org):
    response = admin_client.post(url("list_create", org), {"name": "All", "kind": "dynamic"})
    assert response.status_code == 400
    assert "needs at least one condition" in response.content.decode()
    response = admin_client.post(
        url("list_create", org),
        {"name": "Odd", "kind": "dynamic", "country": "Atlantis", "activity_days": "7"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Unknown country" in html and "Choose which activity" in html
    with tenant_scope(org):
        assert not NurtureList.objects.exists()


def test_duplicate_list_name_is_a_form_error(admin_client, org, other_org):
    static_list(org, name="Newsletter")
    response = admin_client.post(url("list_create", org), {"name": "newsletter", "kind": "static"})
    assert response.status_code == 400
    assert "There is already a list named" in response.content.decode()


def test_list_members_page_runs_constant_queries(
    admin_client, org, other_org, make_leads, django_assert_num_queries
):
    # More than a page at both sizes: its rows carry their capped count (one query).
    nurture_list = static_list(org, make_leads(org, 55))

    def grow():
        with tenant_scope(org):
            list_services.list_add_leads(
                nurture_list=nurture_list, lead_ids=[x.pk for x in make_leads(org, 60)]
            )

    path = url("list_detail", org, list_id=nurture_list.pk)
    pinned(django_assert_num_queries, admin_client, path, 7, grow)


def test_lead_search_finds_leads_not_yet_on_the_list(admin_client, org, other_org):
    with tenant_scope(org):
        on_list = LeadFactory(organization=org, first_name="Zed", email="zed1@acme.example")
        off_list = LeadFactory(organization=org, first_name="Zed", email="zed2@acme.example")
    with tenant_scope(other_org):
        LeadFactory(organization=other_org, first_name="Zed", email="zed3@globex.example")
    nurture_list = static_list(org, [on_list])
    html = admin_client.get(
        url("list_lead_search", org, list_id=nurture_list.pk) + "?q=zed", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert off_list.email in html
    assert on_list.email not in html and "globex" not in html


def test_bulk_add_to_list_adds_only_this_orgs_leads(admin_client, org, other_org, make_leads):
    nurture_list = static_list(org)
    mine = make_leads(org, 2)
    (theirs,) = make_leads(other_org, 1)
    response = admin_client.post(
        url("list_bulk_add", org),
        {"nurture_list": nurture_list.pk, "lead_ids": [x.pk for x in mine] + [theirs.pk]},
    )
    assert response["Location"] == url("list_detail", org, list_id=nurture_list.pk)
    with tenant_scope(org):
        assert ListMembership.objects.filter(list=nurture_list).count() == 2
    foreign_list = static_list(other_org, name="Theirs")
    response = admin_client.post(
        url("list_bulk_add", org), {"nurture_list": foreign_list.pk, "lead_ids": [mine[0].pk]}
    )
    assert any("Select a valid choice" in n for n in flashed(response))


def test_another_orgs_objects_are_404(admin_client, org, other_org, make_sequence):
    nurture_list = static_list(other_org)
    sequence = make_sequence(other_org)
    with tenant_scope(other_org):
        template = EmailTemplateFactory(organization=other_org)
    for path in (
        url("list_detail", org, list_id=nurture_list.pk),
        url("template_edit", org, template_id=template.pk),
        url("sequence_detail", org, sequence_id=sequence.pk),
        url("sequence_report", org, sequence_id=sequence.pk),
    ):
        assert admin_client.get(path).status_code == 404, path
    response = admin_client.post(
        url("list_add", org, list_id=nurture_list.pk), {"emails": "a@b.example"}
    )
    assert response.status_code == 404


# --- Templates -------------------------------------------------------------------------

BODY = (
    '<p>Hi {{ first_name }} at {{ company }}</p><script>alert(1)</script><iframe src="x"></iframe>'
)


def test_template_is_saved_sanitized(admin_client, org, other_org):
    response = admin_client.post(
        url("template_create", org),
        {"name": "Welcome", "subject": "Welcome, {{ first_name }}", "body_html": BODY},
    )
    with tenant_scope(org):
        template = EmailTemplate.objects.get()
    assert response["Location"] == url("template_edit", org, template_id=template.pk)
    assert template.body_html == "<p>Hi {{ first_name }} at {{ company }}</p>"
    assert "script" not in template.body_html and "iframe" not in template.body_html


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("subject", "Hi {{ secret_key }}", "unknown merge field {{ secret_key }}"),
        ("body_html", "<p>{% if first_name %}unclosed</p>", "Body:"),
        ("body_html", "<p>{% load static %}</p>", "the tag {% load %} is not allowed"),
        ("body_text", "{{ lead.owner.password }}", "is not a merge field"),
    ],
)
def test_template_with_bad_merge_fields_is_refused(
    admin_client, org, other_org, field, value, message
):
    data = {"name": "Bad", "subject": "Hello", "body_html": "<p>Hi</p>", "body_text": ""}
    data[field] = value
    response = admin_client.post(url("template_create", org), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    with tenant_scope(org):
        assert not EmailTemplate.objects.exists()


def test_preview_renders_with_a_real_lead_of_this_org_only(admin_client, org, other_org):
    with tenant_scope(org):
        ana = LeadFactory(organization=org, first_name="Ana", company_name="Initech")
    with tenant_scope(other_org):
        spy = LeadFactory(organization=other_org, first_name="Spy")
    data = {"subject": "Hi {{ first_name }}", "body_html": BODY, "lead": ana.pk}
    response = admin_client.post(url("template_preview", org), data, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="preview-subject">Hi Ana<' in html
    assert "Hi Ana at Initech" in html and "&lt;script" not in html and "alert(1)" not in html
    # Another organization's lead id falls back to one of ours.
    response = admin_client.post(url("template_preview", org), {**data, "lead": spy.pk})
    assert "Spy" not in response.content.decode()
    response = admin_client.post(
        url("template_preview", org), {"subject": "Hi {{ nope }}", "body_html": "x"}
    )
    assert 'data-testid="preview-error"' in response.content.decode()


def test_test_send_goes_to_me_and_shows_in_the_outbox(
    admin_client, admin, org, other_org, django_capture_on_commit_callbacks
):
    with tenant_scope(org):
        template = EmailTemplateFactory(organization=org)
        ana = LeadFactory(organization=org, first_name="Ana")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            url("template_test_send", org, template_id=template.pk),
            {"to_email": admin.user.email, "lead": ana.pk},
        )
    assert any("Test email queued" in n for n in flashed(response))
    with tenant_scope(org):
        message = EmailMessage.objects.get()
    assert message.is_test and message.to_email == admin.user.email
    assert [m.to for m in mail.outbox] == [[admin.user.email]]
    assert "Ana" in mail.outbox[0].subject
    response = admin_client.post(
        url("template_test_send", org, template_id=template.pk), {"to_email": "nope"}
    )
    assert any("valid email" in n for n in flashed(response))


def test_template_list_runs_constant_queries(
    admin_client, org, other_org, make_sequence, django_assert_num_queries
):
    make_sequence(org, delays=[(0, 0)])

    def grow():
        make_sequence(org, delays=[(0, 0), (1, 0), (2, 0)])

    pinned(django_assert_num_queries, admin_client, url("template_list", org), 4, grow)


# --- Sequences -------------------------------------------------------------------------


def test_sequence_settings_are_saved(admin_client, org, other_org):
    verified_sender(org, from_email="ana@acme.example")
    nurture_list = static_list(org)
    foreign_list = static_list(other_org, name="Theirs")
    data = {
        "name": "Recycled nurture",
        "is_active": "on",
        "trigger_lists": [nurture_list.pk],
        "trigger_recycled": "on",
        "exit_on": ["mql", "unsubscribed"],
        "window_enabled": "on",
        "window_days": ["0", "2", "4"],
        "window_start": "08:30",
        "window_end": "16:00",
        "timezone": "Europe/Berlin",
        "from_name": "Ana from Acme",
        "from_email": "ana@acme.example",
    }
    response = admin_client.post(url("sequence_create", org), data)
    with tenant_scope(org):
        sequence = Sequence.objects.get()
    assert response["Location"] == url("sequence_detail", org, sequence_id=sequence.pk)
    assert sequence.is_active
    assert sequence.entry_triggers == [
        {"type": "joins_list", "list_id": nurture_list.pk},
        {"type": "recycled"},
    ]
    assert sequence.exit_on == ["mql", "unsubscribed"]
    assert sequence.send_window == {"days": [0, 2, 4], "start": "08:30", "end": "16:00"}
    assert (sequence.timezone, sequence.from_email) == ("Europe/Berlin", "ana@acme.example")

    html = admin_client.get(url("sequence_edit", org, sequence_id=sequence.pk)).content.decode()
    assert 'value="08:30"' in html and "Ana from Acme" in html

    bad = {**data, "trigger_lists": [foreign_list.pk], "window_end": "07:00"}
    response = admin_client.post(url("sequence_edit", org, sequence_id=sequence.pk), bad)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Select a valid choice" in html and "The window must close after it opens" in html


def test_builder_adds_moves_and_deletes_steps(admin_client, org, other_org):
    with tenant_scope(org):
        sequence = SequenceFactory(organization=org)
        first = EmailTemplateFactory(organization=org, name="First")
        second = EmailTemplateFactory(organization=org, name="Second")
    with tenant_scope(other_org):
        foreign = EmailTemplateFactory(organization=other_org, name="Foreign")
    html = admin_client.get(url("sequence_detail", org, sequence_id=sequence.pk)).content.decode()
    assert 'data-testid="no-steps"' in html
    for template, days in ((first, 0), (second, 3)):
        response = admin_client.post(
            url("step_create", org, sequence_id=sequence.pk),
            {"delay_days": days, "delay_hours": 2, "template": template.pk},
        )
        assert response.status_code == 302
    response = admin_client.post(
        url("step_create", org, sequence_id=sequence.pk),
        {"delay_days": -1, "delay_hours": 30, "template": foreign.pk},
    )
    assert response.status_code == 400
    with tenant_scope(org):
        steps = list(SequenceStep.objects.filter(sequence=sequence).order_by("position"))
    assert [(s.position, s.template_id, s.delay_days) for s in steps] == [
        (1, first.pk, 0),
        (2, second.pk, 3),
    ]
    admin_client.post(url("step_move", org, step_id=steps[1].pk), {"direction": "up"})
    response = admin_client.post(url("step_move", org, step_id=steps[1].pk), {"direction": "x"})
    assert "Move a step up or down." in flashed(response)
    with tenant_scope(org):
        order = list(
            SequenceStep.objects.filter(sequence=sequence)
            .order_by("position")
            .values_list("template_id", flat=True)
        )
    assert order == [second.pk, first.pk]

    response = admin_client.post(
        url("step_edit", org, step_id=steps[0].pk),
        {"delay_days": 1, "delay_hours": 0, "template": second.pk},
    )
    assert response.status_code == 302
    admin_client.post(url("step_delete", org, step_id=steps[1].pk))
    with tenant_scope(org):
        left = list(SequenceStep.objects.filter(sequence=sequence).values_list("position", "pk"))
    assert left == [(1, steps[0].pk)]


def test_enrolling_a_list_respects_consent(admin_client, org, other_org, make_leads, make_sequence):
    sequence = make_sequence(org, delays=[(0, 0), (2, 0)])
    consenting = make_leads(org, 2)
    no_consent = make_leads(org, 1, email_opt_in=False)
    nurture_list = static_list(org, consenting + no_consent)
    response = admin_client.post(
        url("sequence_enroll", org, sequence_id=sequence.pk), {"nurture_list": nurture_list.pk}
    )
    assert (
        "2 leads of Webinar attendees enrolled. Skipped: 1 without email consent or suppressed."
        in flashed(response)
    )
    with tenant_scope(org):
        enrolled = set(Enrollment.objects.values_list("lead_id", flat=True))
    assert enrolled == {x.pk for x in consenting}
    response = admin_client.post(url("sequence_enroll", org, sequence_id=sequence.pk), {})
    assert response.status_code == 400
    assert "Choose the list whose members to enroll." in response.content.decode()


def test_enrollment_pause_resume_stop(admin_client, org, other_org, make_sequence):
    sequence = make_sequence(org)
    with tenant_scope(org):
        enrollment = EnrollmentFactory(sequence=sequence)

    def status():
        with tenant_scope(org):
            enrollment.refresh_from_db()
        return enrollment.status

    admin_client.post(url("enrollment_pause", org, enrollment_id=enrollment.pk))
    assert status() == EnrollmentStatus.PAUSED
    response = admin_client.post(url("enrollment_pause", org, enrollment_id=enrollment.pk))
    assert "Only an active enrollment can be paused." in flashed(response)
    admin_client.post(url("enrollment_resume", org, enrollment_id=enrollment.pk))
    assert status() == EnrollmentStatus.ACTIVE
    response = admin_client.post(url("enrollment_stop", org, enrollment_id=enrollment.pk))
    assert response["Location"] == url("sequence_detail", org, sequence_id=sequence.pk)
    assert status() == EnrollmentStatus.STOPPED


def test_sequence_pages_run_constant_queries(
    admin_client, org, other_org, make_sequence, django_assert_num_queries
):
    sequence = make_sequence(org, delays=[(0, 0), (1, 0)])
    with tenant_scope(org):
        EnrollmentFactory(sequence=sequence)

    def grow():
        with tenant_scope(org):
            EnrollmentFactory.create_batch(30, sequence=sequence)
        make_sequence(org, delays=[(0, 0)])

    pinned(django_assert_num_queries, admin_client, url("sequence_list", org), 4, grow)
    detail = url("sequence_detail", org, sequence_id=sequence.pk)
    with django_assert_num_queries(12):
        admin_client.get(detail)
    grow()
    with django_assert_num_queries(12):
        assert "Step 1" in admin_client.get(detail + "?status=active").content.decode()


def test_sequence_report_shows_each_steps_numbers(admin_client, org, other_org, make_sequence):
    sequence = make_sequence(org, delays=[(0, 0), (2, 0)])
    now = timezone.now()
    with tenant_scope(org):
        first, _ = SequenceStep.objects.filter(sequence=sequence).order_by("position")
        for i in range(4):
            EmailMessageFactory(
                enrollment__sequence=sequence,
                step=first,
                status=MessageStatus.SENT,
                sent_at=now,
                opened_at=now if i < 2 else None,
                clicked_at=now if i == 0 else None,
            )
    html = admin_client.get(url("sequence_report", org, sequence_id=sequence.pk)).content.decode()
    assert 'data-chart="report-chart"' in html
    row = html.split('data-testid="report-table"')[1].split("<tr>")[2]
    cells = [c.split("<")[0].strip() for c in row.split('<td class="text-end">')[1:]]
    # sent, delivered, opened, clicked, unsubscribed, bounced, became MQL
    assert cells == ["4", "4", "2", "1", "0", "0", "0"]
    assert "50%" in row and "25%" in row


# --- Outbox ---------------------------------------------------------------------------


def test_outbox_filters_by_status_in_constant_queries(
    admin_client, org, other_org, make_sequence, django_assert_num_queries
):
    sequence = make_sequence(org)
    other_sequence = make_sequence(other_org)
    with tenant_scope(org):
        sent = EmailMessageFactory(enrollment__sequence=sequence, status=MessageStatus.SENT)
        failed = EmailMessageFactory(
            enrollment__sequence=sequence, status=MessageStatus.FAILED, subject="Broken one"
        )
    with tenant_scope(other_org):
        EmailMessageFactory(enrollment__sequence=other_sequence, subject="Globex mail")
    html = admin_client.get(url("outbox", org)).content.decode()
    assert sent.to_email in html and failed.to_email in html and "Globex mail" not in html
    html = admin_client.get(url("outbox", org) + "?status=failed").content.decode()
    assert "Broken one" in html and sent.to_email not in html

    def grow():
        with tenant_scope(org):
            EmailMessageFactory.create_batch(30, enrollment__sequence=sequence)

    # 8: with the sender identity the hold banner reads.
    pinned(django_assert_num_queries, admin_client, url("outbox", org), 7, grow)


def test_outbox_shows_attempts_last_error_and_next_attempt(admin_client, org, other_org):
    retry_at = timezone.now() + dt.timedelta(minutes=8)
    with tenant_scope(org):
        waiting = EmailMessageFactory(
            enrollment__sequence__organization=org,
            attempts=3,
            error="451 b'4.3.0 Try again later'",
            next_attempt_at=retry_at,
            last_attempt_at=timezone.now(),
        )
        unsure = EmailMessageFactory(
            enrollment__sequence__organization=org, status=MessageStatus.UNCONFIRMED, attempts=1
        )
    with tenant_scope(other_org):
        EmailMessageFactory(
            enrollment__sequence__organization=other_org, error="Globex error", attempts=2
        )
    html = admin_client.get(url("outbox", org)).content.decode()
    assert "3 attempts" in html and "4.3.0 Try again later" in html
    assert f"next {retry_at:%b} {retry_at.day}, {retry_at:%H:%M}" in html
    assert "Unconfirmed" in html and "Globex error" not in html
    detail = admin_client.get(url("message_detail", org, message_id=waiting.pk)).content.decode()
    assert 'data-testid="next-attempt"' in detail and "Try again later" in detail
    assert admin_client.get(url("message_detail", org, message_id=unsure.pk)).status_code == 200


def test_an_unconfirmed_email_is_sent_again_only_when_asked_with_its_message_id(
    admin_client, org, other_org, django_capture_on_commit_callbacks
):
    with tenant_scope(org):
        unsure = EmailMessageFactory(
            enrollment__sequence__organization=org,
            status=MessageStatus.UNCONFIRMED,
            attempts=1,
            handed_at=timezone.now(),
        )
        sent = EmailMessageFactory(enrollment__sequence__organization=org, status="sent")
    with tenant_scope(other_org):
        foreign = EmailMessageFactory(
            enrollment__sequence__organization=other_org, status=MessageStatus.UNCONFIRMED
        )
    detail = admin_client.get(url("message_detail", org, message_id=unsure.pk)).content.decode()
    assert 'data-testid="resend"' in detail
    assert mail.outbox == []  # held: never resent by itself
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url("message_resend", org, message_id=unsure.pk))
    assert "The email is queued to be sent again." in flashed(response)
    assert [m.extra_headers["Message-ID"] for m in mail.outbox] == [unsure.message_id]
    with tenant_scope(org):
        unsure.refresh_from_db()
    assert (unsure.status, unsure.attempts) == (MessageStatus.SENT, 2)
    response = admin_client.post(url("message_resend", org, message_id=sent.pk))
    assert "Only an unconfirmed email can be sent again." in flashed(response)
    foreign_url = url("message_resend", org, message_id=foreign.pk)
    assert admin_client.post(foreign_url).status_code == 404
    assert len(mail.outbox) == 1


def test_message_detail_shows_html_sandboxed_and_text(admin_client, org, other_org):
    with tenant_scope(org):
        message = EmailMessageFactory(
            enrollment__sequence__organization=org,
            html='<p>Hello "Ana"</p>',
            text="Hello Ana, plain.",
            links=["https://example.com/guide"],
        )
    html = admin_client.get(url("message_detail", org, message_id=message.pk)).content.decode()
    body_url = url("message_body", org, message_id=message.pk)
    frame = re.search(r"<iframe [^>]*>", html).group(0)
    assert 'sandbox=""' in frame and f'src="{body_url}"' in frame and "srcdoc" not in frame
    assert '<p>Hello "Ana"</p>' in admin_client.get(body_url).content.decode()
    assert "Hello Ana, plain." in html
    headers = html.split('data-testid="raw-headers"')[1].split("</dl>")[0]
    assert "List-Unsubscribe-Post" in headers and "One-Click" in headers
    assert message.message_id.replace("<", "&lt;").replace(">", "&gt;") in headers
    assert "https://example.com/guide" in html


def test_send_due_now_dispatches_and_sends(
    admin_client, org, other_org, make_sequence, make_leads, django_capture_on_commit_callbacks
):
    sequence = make_sequence(org, delays=[(0, 0), (3, 0)])
    other_sequence = make_sequence(other_org)
    (ana,) = make_leads(org, 1, first_name="Ana")
    with tenant_scope(org):
        EnrollmentFactory(
            sequence=sequence, lead=ana, next_send_at=timezone.now() - dt.timedelta(minutes=1)
        )
    with tenant_scope(other_org):
        EnrollmentFactory(sequence=other_sequence)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url("outbox_dispatch", org))
    assert "1 email queued for sending." in flashed(response)
    assert [m.to for m in mail.outbox] == [[ana.email]]
    with tenant_scope(org):
        message = EmailMessage.objects.get()
    assert message.status == MessageStatus.SENT and message.step.position == 1
    response = admin_client.post(url("outbox_dispatch", org))
    assert "Nothing is due right now." in flashed(response)
