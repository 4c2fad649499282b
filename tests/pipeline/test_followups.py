"""A rep's tasks (follow-ups): the model's one-subject rule, the services' rules
(future due dates, a rep's own leads, who may be assigned), the next step and
call outcome of "log a touch", the stalled flag (one rule, everywhere), the
queue's order, "My day" (sections, query count at two sizes, htmx complete),
the lead page's tasks card and the task-due notices. A second tenant in each."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, Lead
from pipeline import selectors, services
from pipeline.errors import NotYourLead, TransitionNotAllowed
from pipeline.followups import lead_follow_ups, my_day, with_task_flags
from pipeline.models import FollowUp, Notification
from pipeline.services.followups import FollowUpInvalid
from pipeline.tasks import follow_ups_remind_sweep
from tests.factories import (
    FollowUpFactory,
    LeadFactory,
    MembershipFactory,
    OpportunityFactory,
)
from tests.pipeline.support import mql_for, pipeline_only, rep

__all__ = ["pipeline_only"]

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
HOUR = dt.timedelta(hours=1)


def url(name: str, org, **kwargs) -> str:
    return reverse(f"pipeline:{name}", kwargs={"org_slug": org.slug, **kwargs})


@pytest.fixture
def rep_client(sales_rep, client_for):
    return client_for(sales_rep)


@pytest.fixture
def lead(org, sales_rep):
    with tenant_scope(org):
        return mql_for(sales_rep, first_name="Mara", last_name="Okafor", phone="+4930123456")


def task(org, **kwargs) -> FollowUp:
    with tenant_scope(org):
        return FollowUpFactory(**kwargs)


# --- Model and services --------------------------------------------------------------


def test_a_task_is_on_exactly_one_lead_or_opportunity(org, sales_rep, lead):
    with tenant_scope(org):
        deal = OpportunityFactory(lead__organization=org)
        base = {"organization": org, "assignee": sales_rep, "title": "x", "due_at": timezone.now()}
        for subject in ({}, {"lead": lead, "opportunity": deal}):
            with pytest.raises(IntegrityError), transaction.atomic():
                FollowUp.objects.create(**base, **subject)
        FollowUp.objects.create(**base, lead=lead)
        FollowUp.objects.create(**base, opportunity=deal)


def test_create_defaults_to_the_lead_owner_and_refuses_the_past(org, admin, sales_rep, lead):
    now = timezone.now()
    with tenant_scope(org):
        made = services.followup_create(
            actor=admin, kind="call", title="Call back", due_at=now + HOUR, lead=lead
        )
        assert (made.assignee_id, made.created_by_id) == (sales_rep.pk, admin.pk)
        with pytest.raises(FollowUpInvalid, match="past"):
            services.followup_create(
                actor=admin, kind="call", title="Late", due_at=now - HOUR, lead=lead
            )
        with pytest.raises(FollowUpInvalid, match="one lead or one opportunity"):
            services.followup_create(actor=admin, kind="call", title="x", due_at=now + HOUR)
        with pytest.raises(FollowUpInvalid, match="call, an email"):
            services.followup_create(
                actor=admin, kind="lunch", title="x", due_at=now + HOUR, lead=lead
            )


def test_an_integration_task_on_an_unowned_lead_names_the_missing_assignee(org, other_org):
    """The API (actor None) gives no assignee and the lead has no owner: a
    FollowUpInvalid on the assignee field, not a TypeError."""
    with tenant_scope(other_org):
        LeadFactory(organization=other_org, owner=None)
    with tenant_scope(org):
        unowned = LeadFactory(organization=org, owner=None)
        with pytest.raises(FollowUpInvalid, match="Say who the task is for") as raised:
            services.followup_create(
                actor=None, kind="call", title="x", due_at=timezone.now() + HOUR, lead=unowned
            )
        assert raised.value.field == "assignee"
        assert not FollowUp.objects.exists()


def test_a_rep_works_only_their_own_leads_and_keeps_their_tasks(org, other_org, sales_rep, lead):
    now = timezone.now()
    with tenant_scope(org):
        colleague = rep(org)
        theirs = mql_for(colleague)
        with pytest.raises(NotYourLead):
            services.followup_create(
                actor=sales_rep, kind="call", title="x", due_at=now + HOUR, lead=theirs
            )
        with pytest.raises(FollowUpInvalid, match="only to yourself"):
            services.followup_create(
                actor=sales_rep,
                kind="call",
                title="x",
                due_at=now + HOUR,
                lead=lead,
                assignee=colleague,
            )
    with tenant_scope(other_org):
        stranger = rep(other_org)
    with tenant_scope(org):  # an admin may assign, but only this organization's sellers
        boss = MembershipFactory(organization=org, role=Role.ADMIN)
        for who in (stranger, MembershipFactory(organization=org, role=Role.MARKETER)):
            with pytest.raises(FollowUpInvalid, match="active sales reps or admins"):
                services.followup_create(
                    actor=boss, kind="call", title="x", due_at=now + HOUR, lead=lead, assignee=who
                )
        made = services.followup_create(
            actor=boss, kind="email", title="x", due_at=now + HOUR, lead=lead, assignee=colleague
        )
        assert made.assignee_id == colleague.pk


def test_update_complete_reopen(org, sales_rep, lead):
    now = timezone.now()
    with tenant_scope(org):
        made = services.followup_create(
            actor=sales_rep, kind="call", title="Call", due_at=now + HOUR, lead=lead
        )
        made.reminded_at = now
        made.save()
        moved = services.followup_update(
            follow_up=made, actor=sales_rep, due_at=now + 2 * HOUR, title="Call again"
        )
        assert (moved.title, moved.due_at, moved.reminded_at) == (
            "Call again",
            now + 2 * HOUR,
            None,
        )
        with pytest.raises(FollowUpInvalid, match="past"):
            services.followup_update(follow_up=made, actor=sales_rep, due_at=now - HOUR)
        done = services.followup_complete(follow_up=made, actor=sales_rep, now=now)
        again = services.followup_complete(follow_up=made, actor=sales_rep, now=now + HOUR)
        assert done.done_at == again.done_at == now
        with pytest.raises(FollowUpInvalid, match="reopen"):
            services.followup_update(follow_up=made, actor=sales_rep, title="x")
        assert services.followup_reopen(follow_up=made, actor=sales_rep).done_at is None
        with pytest.raises(NotYourLead):
            services.followup_complete(follow_up=made, actor=rep(org))


def test_touch_with_a_next_step_and_call_outcome_is_one_transaction(org, sales_rep, lead):
    now = timezone.now()
    with tenant_scope(org):
        activity = services.lead_touch(
            lead=lead,
            actor=sales_rep,
            kind="call",
            note="Voicemail",
            call_outcome="voicemail",
            duration_seconds=45,
            next_step={"kind": "call", "title": "Try again", "due_at": now + HOUR},
        )
        assert activity.properties["outcome"] == "voicemail"
        assert activity.properties["duration_seconds"] == 45
        assert FollowUp.objects.get(lead=lead).title == "Try again"
        # A next step that cannot be stored leaves no touch behind either.
        with pytest.raises(FollowUpInvalid):
            services.lead_touch(
                lead=lead,
                actor=sales_rep,
                kind="meeting",
                note="Demo",
                next_step={"kind": "call", "title": "Late", "due_at": now - HOUR},
            )
        assert Activity.objects.filter(lead=lead).count() == 1
        with pytest.raises(TransitionNotAllowed):
            services.lead_touch(lead=lead, actor=sales_rep, kind="call", note="", call_outcome="x")
        with pytest.raises(TransitionNotAllowed):
            services.lead_touch(
                lead=lead, actor=sales_rep, kind="note", note="n", call_outcome="connected"
            )


# --- Stalled: one rule, the same answer in the queue, My day and the lead page --------


def _reference_stalled(tasks: list[tuple[str, bool]]) -> bool:
    """The rule in plain Python: ('past'|'future', done) per task of the lead."""
    open_ = [when for when, done in tasks if not done]
    return "past" in open_ and "future" not in open_


def test_stalled_is_the_same_everywhere_and_matches_the_rule(org, other_org, sales_rep):
    """Every combination of up to two tasks (past/future, open/done, on the lead or
    on its deal) through the queue's annotation, My day and the lead page."""
    now = timezone.now()
    shapes = [("past", False), ("past", True), ("future", False), ("future", True)]
    cases = [(), *((s,) for s in shapes), *itertools.combinations(shapes, 2)]
    expected = {}
    with tenant_scope(org):
        for n, case in enumerate(cases):
            lead = mql_for(sales_rep)
            deal = OpportunityFactory(lead=lead) if n % 2 else None
            for i, (when, done) in enumerate(case):
                on_deal = deal is not None and i == 0
                FollowUpFactory(
                    lead=None if on_deal else lead,
                    opportunity=deal if on_deal else None,
                    organization=org,
                    assignee=sales_rep,
                    due_at=now + (-HOUR if when == "past" else HOUR),
                    done_at=now if done else None,
                )
            expected[lead.pk] = _reference_stalled(list(case))
    with tenant_scope(other_org):  # another tenant's overdue task changes nothing here
        FollowUpFactory(lead__organization=other_org, due_at=now - HOUR)
    with tenant_scope(org):
        queue = {lead.pk: lead.is_stalled for lead in selectors.rep_queue(membership=sales_rep)}
        flags = dict(with_task_flags(Lead.objects.all(), now).values_list("pk", "is_stalled"))
        page = {pk: lead_follow_ups(lead=Lead(pk=pk), now=now).stalled for pk in expected}
        day = my_day(membership=sales_rep, now=now, zone="UTC")
        in_day = {t.subject_lead.pk for t in day.overdue if t.lead_stalled}
    assert queue == flags == page == expected
    assert in_day == {pk for pk, stalled in expected.items() if stalled}
    assert any(expected.values()) and not all(expected.values())


def test_queue_puts_leads_with_overdue_tasks_first_within_the_same_urgency(org, sales_rep):
    now = timezone.now()
    with tenant_scope(org):
        plain = mql_for(sales_rep, score=90, band="hot")
        late = mql_for(sales_rep, score=10, band="cold")
        Lead.objects.filter(pk__in=[plain.pk, late.pk]).update(stage="sal")
        from pipeline.models import Assignment

        Assignment.objects.update(accepted_at=now, first_touched_at=now)  # no SLA clock
        FollowUpFactory(lead=late, assignee=sales_rep, due_at=now - HOUR)
        order = [lead.pk for lead in selectors.rep_queue(membership=sales_rep)]
    assert order == [late.pk, plain.pk]


# --- My day ---------------------------------------------------------------------------


def test_my_day_sections_and_empty_state(rep_client, org, other_org, sales_rep, lead):
    response = rep_client.get(url("my_day", org))
    assert response.status_code == 200 and "No tasks yet" in response.content.decode()
    now = timezone.now()
    with tenant_scope(org):
        for title, due in [
            ("Overdue call", now - HOUR),
            ("Later today", now + dt.timedelta(minutes=1)),
            ("Next week", now + dt.timedelta(days=6)),
            ("Far away", now + dt.timedelta(days=30)),
        ]:
            FollowUpFactory(lead=lead, assignee=sales_rep, title=title, due_at=due)
        FollowUpFactory(lead=mql_for(rep(org)), title="A colleague's task")
    with tenant_scope(other_org):
        FollowUpFactory(lead__organization=other_org, title="Foreign task")
    with tenant_scope(org):
        day = my_day(membership=sales_rep, now=now, zone="UTC")
    assert [t.title for t in day.overdue] == ["Overdue call"]
    assert [t.title for t in day.upcoming] == ["Next week"]
    assert day.stalled_count == 0  # "Later today" is the next step
    html = rep_client.get(url("my_day", org)).content.decode()
    for shown in ("Overdue call", "Next week", "Mara Okafor"):
        assert shown in html
    for hidden in ("Far away", "A colleague", "Foreign task"):
        assert hidden not in html


def test_my_day_today_ends_at_midnight_in_the_org_time_zone(org, sales_rep, lead):
    now = dt.datetime(2026, 3, 10, 20, 0, tzinfo=dt.UTC)  # 09:00 next day in Auckland
    with tenant_scope(org):
        FollowUpFactory(lead=lead, assignee=sales_rep, due_at=now + 4 * HOUR, title="Soon")
        utc = my_day(membership=sales_rep, now=now, zone="UTC")
        nz = my_day(membership=sales_rep, now=now, zone="Pacific/Auckland")
    assert [t.title for t in utc.upcoming] == ["Soon"]  # after midnight UTC
    assert [t.title for t in nz.today] == ["Soon"]  # 13:00 the same day in Auckland


def test_my_day_query_count_is_pinned(rep_client, org, sales_rep, django_assert_num_queries):
    now = timezone.now()

    def load(n):
        with tenant_scope(org):
            for i in range(n):
                lead = mql_for(sales_rep)
                FollowUpFactory(lead=lead, assignee=sales_rep, due_at=now + (i - 1) * HOUR)
                deal = OpportunityFactory(lead=mql_for(sales_rep))
                FollowUpFactory(
                    lead=None, opportunity=deal, organization=org, assignee=sales_rep,
                    due_at=now - HOUR, done_at=now,
                )  # fmt: skip
        with django_assert_num_queries(MY_DAY_QUERIES):
            html = rep_client.get(url("my_day", org)).content.decode()
        return html.count('data-testid="follow-up"')

    assert load(2) == 4
    assert load(7) == 18


# middleware (3) + open tasks, done today
MY_DAY_QUERIES = 5


def test_complete_and_reopen_through_htmx(rep_client, org, sales_rep, lead):
    made = task(org, lead=lead, assignee=sales_rep, due_at=timezone.now() - HOUR)
    response = rep_client.post(
        url("follow_up_complete", org, follow_up_id=made.pk), {"show_subject": "1"}, **HX
    )
    assert response.status_code == 200 and "Task done." in response.content.decode()
    assert "Mara Okafor" in response.content.decode()  # My day keeps the lead's link
    assert 'data-action="reopen-task"' in response.content.decode()
    with tenant_scope(org):
        assert FollowUp.objects.get(pk=made.pk).done_at is not None
    response = rep_client.post(url("follow_up_reopen", org, follow_up_id=made.pk))
    assert response.status_code == 302
    with tenant_scope(org):
        assert FollowUp.objects.get(pk=made.pk).done_at is None


def test_another_reps_or_orgs_task_is_a_404(rep_client, org, other_org, sales_rep):
    with tenant_scope(org):
        colleague = rep(org)
        theirs = FollowUpFactory(lead=mql_for(colleague), assignee=colleague)
    with tenant_scope(other_org):
        foreign = FollowUpFactory(lead__organization=other_org)
    for pk in (theirs.pk, foreign.pk):
        for name in ("follow_up_complete", "follow_up_reopen"):
            assert rep_client.post(url(name, org, follow_up_id=pk)).status_code == 404
        assert rep_client.get(url("follow_up_edit", org, follow_up_id=pk)).status_code == 404
    with tenant_scope(org):
        assert FollowUp.objects.get(pk=theirs.pk).done_at is None


def test_edit_page_saves_in_the_org_time_zone(client_for, org, sales_rep, lead):
    org.timezone = "Europe/Berlin"
    org.save()
    made = task(org, lead=lead, assignee=sales_rep)
    tomorrow = timezone.localdate() + dt.timedelta(days=2)
    response = client_for(sales_rep).post(
        url("follow_up_edit", org, follow_up_id=made.pk),
        {"kind": "meeting", "title": "Demo", "due_at": f"{tomorrow}T09:30", "notes": ""},
    )
    assert response.status_code == 302, response.content[:500]
    with tenant_scope(org):
        saved = FollowUp.objects.get(pk=made.pk)
    local = timezone.localtime(saved.due_at, dt.timezone(dt.timedelta(hours=1)))
    assert (saved.kind, saved.title, local.hour, local.minute) == ("meeting", "Demo", 9, 30)


# --- Creating tasks: the queue row, the lead page, log a touch --------------------------


def test_task_from_the_queue_row(rep_client, org, sales_rep, lead):
    path = url("lead_follow_up", org, lead_id=lead.pk)
    response = rep_client.get(path, **HX)
    assert 'data-testid="action-form"' in response.content.decode()
    due = (timezone.now() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = rep_client.post(path, {"kind": "call", "title": "Call back", "due_at": due}, **HX)
    assert "Task “Call back” added." in response.content.decode()
    past = (timezone.now() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = rep_client.post(path, {"kind": "call", "title": "Late", "due_at": past}, **HX)
    assert "cannot be due in the past" in response.content.decode()
    with tenant_scope(org):
        assert list(FollowUp.objects.values_list("title", "assignee_id")) == [
            ("Call back", sales_rep.pk)
        ]


def test_task_on_another_reps_or_orgs_lead_is_a_404(rep_client, org, other_org, sales_rep):
    with tenant_scope(org):
        theirs = mql_for(rep(org))
    with tenant_scope(other_org):
        foreign = LeadFactory(organization=other_org)
    due = (timezone.now() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    for lead in (theirs, foreign):
        response = rep_client.post(
            url("lead_follow_up", org, lead_id=lead.pk),
            {"kind": "call", "title": "x", "due_at": due},
        )
        assert response.status_code == 404
    with tenant_scope(org):
        assert not FollowUp.objects.exists()


def test_lead_page_lists_tasks_and_offers_the_form_and_tel_link(rep_client, org, sales_rep, lead):
    now = timezone.now()
    task(org, lead=lead, assignee=sales_rep, title="Overdue call", due_at=now - HOUR)
    task(org, lead=lead, assignee=sales_rep, title="Sent deck", done_at=now)
    detail = reverse("leads:lead_detail", kwargs={"org_slug": org.slug, "lead_id": lead.pk})
    html = rep_client.get(detail).content.decode()
    assert 'data-testid="tasks-panel"' in html and 'data-testid="lead-task-form"' in html
    assert "Overdue call" in html and "Sent deck" in html
    assert 'data-testid="stalled-badge"' in html
    assert 'href="tel:+4930123456"' in html
    due = (now + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = rep_client.post(
        url("lead_follow_up", org, lead_id=lead.pk),
        {"kind": "call", "title": "Next", "due_at": due, "next": detail},
    )
    assert response.status_code == 302 and response["Location"] == detail
    assert 'data-testid="stalled-badge"' not in rep_client.get(detail).content.decode()


def test_log_a_call_with_outcome_and_next_step(rep_client, org, sales_rep, lead):
    due = (timezone.now() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    data = {
        "kind": "call",
        "outcome": "no_answer",
        "duration_minutes": "2",
        "note": "",
        "next_kind": "email",
        "next_title": "Send a follow-up email",
        "next_due": due,
    }
    response = rep_client.post(url("lead_touch", org, lead_id=lead.pk), data, **HX)
    assert "Call logged. Next step added" in response.content.decode()
    with tenant_scope(org):
        call = Activity.objects.get(lead=lead, kind="call")
        assert (call.properties["outcome"], call.properties["duration_seconds"]) == (
            "no_answer",
            120,
        )
        assert FollowUp.objects.get(lead=lead).kind == "email"
    response = rep_client.post(
        url("lead_touch", org, lead_id=lead.pk),
        {"kind": "meeting", "note": "x", "next_title": "Half a step"},
        **HX,
    )
    assert "When is the next step due?" in response.content.decode()


def test_queue_row_shows_the_stalled_badge_and_tel_link(rep_client, org, sales_rep, lead):
    task(org, lead=lead, assignee=sales_rep, due_at=timezone.now() - HOUR)
    html = rep_client.get(url("queue", org)).content.decode()
    assert 'data-testid="stalled-badge"' in html and 'href="tel:+4930123456"' in html
    assert 'data-action="follow_up"' in html


# --- Task-due notices ----------------------------------------------------------------


def test_task_due_notices_once_per_task_per_tenant(
    org, other_org, sales_rep, lead, mailoutbox, django_capture_on_commit_callbacks
):
    now = timezone.now()
    due = task(org, lead=lead, assignee=sales_rep, title="Call Mara", due_at=now - HOUR)
    task(org, lead=lead, assignee=sales_rep, due_at=now + HOUR)  # not due yet
    task(org, lead=lead, assignee=sales_rep, due_at=now - HOUR, done_at=now)  # done
    with tenant_scope(org):
        deal = OpportunityFactory(lead=mql_for(sales_rep))
        on_deal = FollowUpFactory(
            lead=None, opportunity=deal, organization=org, assignee=sales_rep, due_at=now
        )
    foreign = task(other_org, lead__organization=other_org, due_at=now - HOUR)
    with django_capture_on_commit_callbacks(execute=True):
        follow_ups_remind_sweep()
        follow_ups_remind_sweep()  # a second run finds nothing new
    with tenant_scope(org):
        notices = list(Notification.objects.filter(kind="task_due").order_by("pk"))
        assert sorted(n.lead_id for n in notices) == sorted([lead.pk, deal.lead_id])
        assert {n.recipient_id for n in notices} == {sales_rep.pk}
        assert any("Call Mara" in n.message for n in notices)
        assert FollowUp.objects.get(pk=on_deal.pk).reminded_at is not None
    with tenant_scope(other_org):
        assert Notification.objects.filter(kind="task_due", lead_id=foreign.lead_id).count() == 1
    assert len(mailoutbox) == 3  # one email per notice (the notice mail task)
    assert any(due.title in m.subject for m in mailoutbox)


def test_task_on_a_deal_from_its_page(client_for, org, other_org, sales_rep):
    with tenant_scope(org):
        deal = OpportunityFactory(lead=mql_for(sales_rep), owner=sales_rep)
        colleague = rep(org)
        theirs = OpportunityFactory(lead=mql_for(colleague), owner=colleague)
    with tenant_scope(other_org):
        foreign = OpportunityFactory(lead__organization=other_org)
    client = client_for(sales_rep)
    page = url("opportunity", org, opportunity_id=deal.pk)
    assert 'data-action="deal-task"' in client.get(page).content.decode()
    due = (timezone.now() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    data = {"kind": "meeting", "title": "Contract review", "due_at": due}
    response = client.post(url("opportunity_follow_up", org, opportunity_id=deal.pk), data)
    assert response.status_code == 302 and response["Location"] == page
    past = {**data, "due_at": (timezone.now() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")}
    response = client.post(url("opportunity_follow_up", org, opportunity_id=deal.pk), past)
    assert response.status_code == 400 and "cannot be due in the past" in response.content.decode()
    for other in (theirs, foreign):
        path = url("opportunity_follow_up", org, opportunity_id=other.pk)
        assert client.post(path, data).status_code == 404
    with tenant_scope(org):
        made = FollowUp.objects.get()
    assert (made.opportunity_id, made.lead_id, made.assignee_id) == (deal.pk, None, sales_rep.pk)
