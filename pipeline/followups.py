"""Reads of a rep's tasks (follow-ups): "My day", a lead's task list, and the
set-based facts the queue and the lead page show about a lead's tasks.

Stalled, the one definition: a lead is stalled when one of its open tasks (on
the lead or on its opportunity) is past due and none of its open tasks is due
from now on -- a step was missed and no next step is planned. Computed with
EXISTS subqueries in the query that lists the rows, never per row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
)
from django.db.models.functions import Coalesce

from accounts.models import Membership, Role
from leads.models import Lead
from pipeline.models import FollowUp

MY_DAY_LIMIT = 200  # open tasks listed (overdue, today, the next 7 days); counts cover all
MY_DAY_DONE_LIMIT = 20
UPCOMING_DAYS = 7
LEAD_TASKS_LIMIT = 50


def _open_tasks_of_lead(lead_ref, **filters) -> Q:
    """EXISTS an open task of the lead `lead_ref` points at (on it or on its deal)
    matching `filters`. Two EXISTS, each served by its own index."""
    on_lead = FollowUp.objects.filter(lead_id=lead_ref, done_at__isnull=True, **filters)
    on_deal = FollowUp.objects.filter(
        opportunity__lead_id=lead_ref, done_at__isnull=True, **filters
    )
    return Q(Exists(on_lead)) | Q(Exists(on_deal))


def _flag(condition: Q) -> ExpressionWrapper:
    return ExpressionWrapper(condition, output_field=BooleanField())


def overdue_q(lead_ref, now: dt.datetime) -> Q:
    return _open_tasks_of_lead(lead_ref, due_at__lt=now)


def next_step_q(lead_ref, now: dt.datetime) -> Q:
    return _open_tasks_of_lead(lead_ref, due_at__gte=now)


def with_task_flags(leads: QuerySet[Lead], now: dt.datetime) -> QuerySet[Lead]:
    """Leads annotated `has_overdue_task` and `is_stalled` (see the module docstring)."""
    pk = OuterRef("pk")
    return leads.annotate(
        has_overdue_task=_flag(overdue_q(pk, now)),
        is_stalled=_flag(overdue_q(pk, now) & ~next_step_q(pk, now)),
    )


def workable_follow_ups(membership: Membership) -> QuerySet[FollowUp]:
    """Tasks this member may see and act on: a rep's own (assigned to them or on
    their leads and deals); every task for admins. Others' are a 404."""
    qs = FollowUp.objects.all()
    if membership.role == Role.SALES_REP:
        qs = qs.filter(
            Q(assignee=membership)
            | Q(lead__owner=membership)
            | Q(opportunity__owner=membership)
            | Q(opportunity__lead__owner=membership)
        )
    return qs


def _with_stalled(tasks: QuerySet[FollowUp], now: dt.datetime) -> QuerySet[FollowUp]:
    """Tasks with their subject lead's stalled flag: this task overdue and no open
    task of the same lead due from now on."""
    lead_ref = OuterRef("subject_lead_id")
    return tasks.alias(subject_lead_id=Coalesce("lead_id", "opportunity__lead_id")).annotate(
        lead_stalled=_flag(Q(done_at__isnull=True, due_at__lt=now) & ~next_step_q(lead_ref, now))
    )


@dataclass
class MyDay:
    now: dt.datetime
    overdue: list[FollowUp] = field(default_factory=list)
    today: list[FollowUp] = field(default_factory=list)
    upcoming: list[FollowUp] = field(default_factory=list)
    done_today: list[FollowUp] = field(default_factory=list)
    truncated: bool = False

    @property
    def open_count(self) -> int:
        return len(self.overdue) + len(self.today) + len(self.upcoming)

    @property
    def stalled_count(self) -> int:
        return len({t.subject_lead.pk for t in self.overdue if t.lead_stalled})


def day_bounds(now: dt.datetime, zone: str) -> tuple[dt.datetime, dt.datetime]:
    """Start of today and of tomorrow in the organization's time zone (aware)."""
    tz = ZoneInfo(zone or "UTC")
    local = now.astimezone(tz)
    start = dt.datetime.combine(local.date(), dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start, end


def my_day(*, membership: Membership, now: dt.datetime, zone: str) -> MyDay:
    """The member's open tasks -- overdue, due today, due in the next 7 days -- and
    what they finished today. Two queries whatever the number of tasks."""
    start, end = day_bounds(now, zone)
    horizon = end + dt.timedelta(days=UPCOMING_DAYS)
    mine = FollowUp.objects.filter(assignee=membership).select_related("lead", "opportunity__lead")
    rows = list(
        _with_stalled(mine.filter(done_at__isnull=True, due_at__lt=horizon), now).order_by(
            "due_at", "pk"
        )[: MY_DAY_LIMIT + 1]
    )
    day = MyDay(now=now, truncated=len(rows) > MY_DAY_LIMIT)
    for task in rows[:MY_DAY_LIMIT]:
        if task.due_at < now:
            day.overdue.append(task)
        elif task.due_at < end:
            day.today.append(task)
        else:
            day.upcoming.append(task)
    day.done_today = list(
        mine.filter(done_at__gte=start).order_by("-done_at", "-pk")[:MY_DAY_DONE_LIMIT]
    )
    return day


@dataclass
class LeadTasks:
    open: list[FollowUp]
    done: list[FollowUp]
    stalled: bool
    overdue: bool


def lead_follow_ups(*, lead: Lead, now: dt.datetime) -> LeadTasks:
    """A lead's tasks (on it and on its deal): open ones by due time, then the
    latest done; and its stalled flag, by the same rule as the queue (one query
    for the list, one for the flags)."""
    base = FollowUp.objects.filter(Q(lead_id=lead.pk) | Q(opportunity__lead_id=lead.pk))
    tasks = list(
        base.select_related("assignee__user").order_by(
            F("done_at").asc(nulls_first=True), "due_at", "pk"
        )[:LEAD_TASKS_LIMIT]
    )
    flags = (
        with_task_flags(Lead.objects.filter(pk=lead.pk), now)
        .values("has_overdue_task", "is_stalled")
        .first()
    ) or {"has_overdue_task": False, "is_stalled": False}
    return LeadTasks(
        open=[t for t in tasks if t.done_at is None],
        done=sorted((t for t in tasks if t.done_at), key=lambda t: t.done_at, reverse=True),
        stalled=bool(flags["is_stalled"]),
        overdue=bool(flags["has_overdue_task"]),
    )
