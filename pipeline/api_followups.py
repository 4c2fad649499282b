"""The tasks API (/api/v1/tasks): list, create, update and complete a rep's
tasks (follow-ups) on a lead or an opportunity.

An API key acts as an integration (like an admin): it may give a task to any
active sales rep or admin of its organization (`assignee_id`, a membership
id; default: the lead's owner). Another organization's lead, opportunity or
task is a 404; a task due in the past is a 400. Writes honour Idempotency-Key
like every API write (accounts.api_writes).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.db.models import F, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from ninja import Field, Query, Schema, Status
from ninja.decorators import decorate_view

from accounts.api_auth import ApiError, json_body, tenant_router
from leadflow.core.api_schemas import API_ERRORS, API_WRITE_ERRORS, PlainOut, StrictInput
from leadflow.core.tenancy import get_tenant_object_or_404
from leads.api_schemas import ApiDatetime
from leads.models import Lead
from leads.services.activities import MAX_ID
from pipeline.models import FollowUp, FollowUpKind, Opportunity
from pipeline.services.followups import (
    FollowUpInvalid,
    followup_complete,
    followup_create,
    followup_update,
)

TASK_BODY_LIMIT = 16 * 1024
KindValue = Literal[tuple(FollowUpKind.values)]  # type: ignore[valid-type]
Id = Field(None, ge=1, le=MAX_ID)

tasks_router = tenant_router()


class TaskIn(StrictInput):
    """A task on one lead (`lead_id`) or one opportunity (`opportunity_id`): exactly
    one of them (else a 400 `task_invalid`)."""

    kind: KindValue = Field("call", description="call, email, meeting or todo.")
    title: str = Field(..., min_length=1, max_length=200)
    due_at: ApiDatetime = Field(..., description="When it is due (ISO 8601 with offset).")
    lead_id: int | None = Id
    opportunity_id: int | None = Id
    assignee_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Membership id (default: the lead's owner)."
    )
    notes: str = Field("", max_length=5000)


class TaskPatchIn(StrictInput):
    """Only the fields given change."""

    kind: KindValue | None = None
    title: str | None = Field(None, min_length=1, max_length=200)
    due_at: ApiDatetime | None = None
    assignee_id: int | None = Field(None, ge=1, le=MAX_ID)
    notes: str | None = Field(None, max_length=5000)


class TaskOut(PlainOut):
    id: int
    kind: str
    title: str
    notes: str
    due_at: dt.datetime
    lead_id: int | None
    opportunity_id: int | None
    assignee_id: int
    created_at: dt.datetime
    done_at: dt.datetime | None
    status: Literal["open", "done"]
    overdue: bool


class TaskPageOut(PlainOut):
    items: list[TaskOut]
    next_cursor: str | None = Field(..., description="Pass as `cursor` for the next page.")
    has_more: bool


class TaskFilters(Schema):
    status: Literal["open", "done", "all"] = "open"
    due_after: ApiDatetime | None = None
    due_before: ApiDatetime | None = None
    lead_id: int | None = Field(None, ge=1, le=MAX_ID, description="On this lead or its deal.")
    assignee_id: int | None = Field(None, ge=1, le=MAX_ID)
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, description="next_cursor of the previous page.")


def _out(task: FollowUp, now: dt.datetime) -> dict:
    return {
        "id": task.pk,
        "kind": task.kind,
        "title": task.title,
        "notes": task.notes,
        "due_at": task.due_at,
        "lead_id": task.lead_id,
        "opportunity_id": task.opportunity_id,
        "assignee_id": task.assignee_id,
        "created_at": task.created_at,
        "done_at": task.done_at,
        "status": "open" if task.done_at is None else "done",
        "overdue": task.done_at is None and task.due_at < now,
    }


def _invalid(exc: FollowUpInvalid) -> ApiError:
    field = {"assignee": "assignee_id", "lead": "lead_id"}.get(exc.field, exc.field)
    return ApiError(400, "task_invalid", str(exc), [{"field": field, "message": str(exc)}])


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICROSECOND = dt.timedelta(microseconds=1)


def _cursor(task: FollowUp) -> str:
    """URL-safe: the due time in microseconds since the epoch, then the id."""
    return f"{(task.due_at - EPOCH) // MICROSECOND}~{task.pk}"


def _after(qs: QuerySet[FollowUp], cursor: str | None) -> QuerySet[FollowUp]:
    if not cursor:
        return qs
    try:
        due_text, pk_text = cursor.split("~")
        due, pk = EPOCH + int(due_text) * MICROSECOND, int(pk_text)
        if not 0 < pk <= MAX_ID:
            raise ValueError
    except (ValueError, OverflowError):
        raise ApiError(400, "invalid_cursor", "The cursor is not one this API gave.") from None
    return qs.filter(Q(due_at__gt=due) | Q(due_at=due, pk__gt=pk))


def _unknown_parameters(request) -> None:
    unknown = sorted(set(request.GET) - set(TaskFilters.model_fields))
    if unknown:
        raise ApiError(
            400,
            "unknown_parameter",
            f"Unknown query parameter(s): {', '.join(unknown)}.",
            [{"field": name, "code": "unknown"} for name in unknown],
        )


@tasks_router.get("", response={200: TaskPageOut, **API_ERRORS}, summary="List tasks")
def task_list(request, filters: Query[TaskFilters]):
    """Tasks by due time, earliest first (open ones by default). Filter by
    status, due range, lead (its own tasks and its deal's) and assignee."""
    _unknown_parameters(request)
    qs = FollowUp.objects.all()
    if filters.status != "all":
        qs = qs.filter(done_at__isnull=filters.status == "open")
    if filters.due_after:
        qs = qs.filter(due_at__gte=filters.due_after)
    if filters.due_before:
        qs = qs.filter(due_at__lt=filters.due_before)
    if filters.lead_id:
        qs = qs.filter(Q(lead_id=filters.lead_id) | Q(opportunity__lead_id=filters.lead_id))
    if filters.assignee_id:
        qs = qs.filter(assignee_id=filters.assignee_id)
    rows = list(_after(qs, filters.cursor).order_by(F("due_at").asc(), "pk")[: filters.limit + 1])
    has_more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    now = timezone.now()
    return {
        "items": [_out(t, now) for t in rows],
        "next_cursor": _cursor(rows[-1]) if has_more else None,
        "has_more": has_more,
    }


@tasks_router.post("", response={201: TaskOut, **API_WRITE_ERRORS}, summary="Create a task")
@decorate_view(json_body(TASK_BODY_LIMIT))
def task_create(request, payload: TaskIn):
    """A task on a lead or an opportunity of this organization, due in the future,
    e.g. `{"kind": "call", "title": "Follow up on the demo", "due_at":
    "2026-12-07T10:00:00+01:00", "lead_id": 42}`."""
    if (payload.lead_id is None) == (payload.opportunity_id is None):
        # A business rule (400 task_invalid), not a schema one: OpenAPI can't say it.
        message = "Give exactly one of lead_id and opportunity_id."
        raise ApiError(400, "task_invalid", message, [{"field": "lead_id", "message": message}])
    lead = opportunity = None
    if payload.lead_id:
        lead = get_tenant_object_or_404(Lead, pk=payload.lead_id)
    else:
        opportunity = get_tenant_object_or_404(
            Opportunity.objects.select_related("lead"), pk=payload.opportunity_id
        )
    try:
        task = followup_create(
            actor=None,
            kind=payload.kind,
            title=payload.title,
            due_at=payload.due_at,
            lead=lead,
            opportunity=opportunity,
            assignee=payload.assignee_id,
            notes=payload.notes,
        )
    except FollowUpInvalid as exc:
        raise _invalid(exc) from exc
    return Status(201, _out(task, timezone.now()))


def _task(task_id: int) -> FollowUp:
    if not 0 < task_id <= MAX_ID:
        raise Http404("No task matches the given query.")
    return get_tenant_object_or_404(FollowUp, pk=task_id)


@tasks_router.patch(
    "/{task_id}", response={200: TaskOut, **API_WRITE_ERRORS}, summary="Update a task"
)
@decorate_view(json_body(TASK_BODY_LIMIT))
def task_update(request, task_id: int, payload: TaskPatchIn):
    """Change an open task's kind, title, due time, assignee or notes."""
    task = _task(task_id)
    fields = payload.model_dump(exclude_unset=True)
    if "assignee_id" in fields:
        fields["assignee"] = fields.pop("assignee_id")
    try:
        task = followup_update(follow_up=task, actor=None, **fields)
    except FollowUpInvalid as exc:
        raise _invalid(exc) from exc
    return _out(task, timezone.now())


@tasks_router.post(
    "/{task_id}/complete",
    response={200: TaskOut, **API_WRITE_ERRORS},
    summary="Complete a task",
)
def task_complete(request, task_id: int):
    """Mark the task done (completing a done task keeps its first done time)."""
    task = followup_complete(follow_up=_task(task_id), actor=None)
    return _out(task, timezone.now())
