"""A rep's tasks (follow-ups): create, edit, complete, reopen, and the "task due"
notices of the beat sweep.

Rules every path (pages, the log-a-touch form, the API) shares:
- a task is on exactly one lead or one opportunity of the organization, and
  is due in the future (a few minutes of clock skew allowed);
- a sales rep works only their own leads (another rep's lead is NotYourLead, a
  404) and gives tasks only to themselves; admins and integrations (actor None)
  may assign any active seller of the organization;
- the assignee defaults to the lead's (or deal's) owner, else the creator.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Role
from accounts.permissions import Perm
from leads.models import Lead
from pipeline.errors import NotYourLead, PipelineError
from pipeline.models import FollowUp, FollowUpKind, Opportunity
from pipeline.routing import SELLER_ROLES

CLOCK_SKEW = timedelta(minutes=5)  # a form filled in "now" reaches us a little later
FURTHEST_DUE = timedelta(days=5 * 366)
TITLE_MAX, NOTES_MAX = 200, 5000
REMIND_BATCH = 1000  # notices per organization per sweep; the next sweep takes the rest


class FollowUpInvalid(PipelineError):
    """A task that cannot be stored: in the past, no subject, an unknown assignee…"""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def _check_actor(actor: Membership | None) -> None:
    if actor is not None and not actor.has_perm(Perm.WORK_LEADS):
        raise FollowUpInvalid("Your role cannot work leads.")


def _subject_owner_ids(lead: Lead | None, opportunity: Opportunity | None) -> set[int]:
    if lead is not None:
        owners = [lead.owner_id]
    else:
        assert opportunity is not None  # callers pass a lead or an opportunity
        owners = [opportunity.owner_id, opportunity.lead.owner_id]
    return {owner for owner in owners if owner is not None}


def _check_subject(actor: Membership | None, lead, opportunity) -> None:
    """A rep reaches only their own leads and deals; foreign rows are a 404 too."""
    mine = actor is None or actor.role != Role.SALES_REP
    if not mine and actor.pk not in _subject_owner_ids(lead, opportunity):  # type: ignore[union-attr]
        raise NotYourLead("This lead is not assigned to you.")


def _clean_due(due_at: Any, now: datetime) -> datetime:
    if not isinstance(due_at, datetime):
        raise FollowUpInvalid("Give the date and time the task is due.", field="due_at")
    if timezone.is_naive(due_at):
        raise FollowUpInvalid("The due time needs a time zone.", field="due_at")
    if due_at < now - CLOCK_SKEW:
        raise FollowUpInvalid("A task cannot be due in the past.", field="due_at")
    if due_at > now + FURTHEST_DUE:
        raise FollowUpInvalid("A task is due within five years.", field="due_at")
    return due_at


def _clean_text(value: Any, *, field: str, limit: int, required: bool) -> str:
    text = str(value or "").strip()
    if required and not text:
        raise FollowUpInvalid("Give the task a title.", field=field)
    if len(text) > limit:
        raise FollowUpInvalid(f"The {field} is at most {limit} characters.", field=field)
    return text


def _clean_kind(kind: Any) -> str:
    if kind not in FollowUpKind.values:
        raise FollowUpInvalid("A task is a call, an email, a meeting or a to-do.", field="kind")
    return str(kind)


def _assignee(
    actor: Membership | None, requested: Membership | int | None, default_id: int | None, org_id
) -> int:
    """The member the task goes to: asked for, else the default. Reps keep their own."""
    wanted = requested.pk if isinstance(requested, Membership) else requested
    if wanted is None:
        wanted = default_id or (actor.pk if actor else None)
        if wanted is None:
            raise FollowUpInvalid(
                "Say who the task is for: the lead has no owner.", field="assignee"
            )
    if actor is not None and actor.role == Role.SALES_REP and wanted != actor.pk:
        raise FollowUpInvalid("You can give tasks only to yourself.", field="assignee")
    ok = Membership.objects.filter(
        pk=wanted, organization_id=org_id, is_active=True, role__in=SELLER_ROLES
    ).exists()
    if not ok:
        raise FollowUpInvalid(
            "Tasks go to active sales reps or admins of this organization.", field="assignee"
        )
    return int(wanted)


@transaction.atomic
def followup_create(
    *,
    actor: Membership | None,
    kind: str,
    title: str,
    due_at: datetime,
    lead: Lead | None = None,
    opportunity: Opportunity | None = None,
    assignee: Membership | int | None = None,
    notes: str = "",
    now: datetime | None = None,
) -> FollowUp:
    """A task on one lead or one opportunity, due in the future (see the module's rules).

    `lead` / `opportunity` must come from a tenant-scoped lookup; actor None is
    an integration (the API)."""
    now = now or timezone.now()
    _check_actor(actor)
    if (lead is None) == (opportunity is None):
        raise FollowUpInvalid("A task is on one lead or one opportunity.", field="lead")
    subject = lead if lead is not None else opportunity.lead  # type: ignore[union-attr]
    if subject.merged_into_id or subject.discarded_at:
        raise FollowUpInvalid("This lead was merged or discarded.", field="lead")
    _check_subject(actor, lead, opportunity)
    default = lead.owner_id if lead is not None else (opportunity.owner_id or subject.owner_id)  # type: ignore[union-attr]
    return FollowUp.objects.create(
        organization_id=subject.organization_id,
        kind=_clean_kind(kind),
        title=_clean_text(title, field="title", limit=TITLE_MAX, required=True),
        notes=_clean_text(notes, field="notes", limit=NOTES_MAX, required=False),
        due_at=_clean_due(due_at, now),
        lead=lead,
        opportunity=opportunity,
        assignee_id=_assignee(actor, assignee, default, subject.organization_id),
        created_by=actor,
        created_at=now,
    )


def _locked(follow_up: FollowUp, actor: Membership | None) -> FollowUp:
    _check_actor(actor)
    current = (
        FollowUp.objects.select_for_update(of=("self",))
        .select_related("lead", "opportunity__lead")
        .get(pk=follow_up.pk)
    )
    if actor is not None and actor.role == Role.SALES_REP and current.assignee_id != actor.pk:
        _check_subject(actor, current.lead, current.opportunity)
    return current


UPDATABLE = frozenset({"kind", "title", "due_at", "notes", "assignee"})


@transaction.atomic
def followup_update(
    *, follow_up: FollowUp, actor: Membership | None, now: datetime | None = None, **fields: Any
) -> FollowUp:
    """Change an open task's kind, title, due time, notes or assignee (same rules as create)."""
    now = now or timezone.now()
    current = _locked(follow_up, actor)
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise FollowUpInvalid(f"Unknown task field(s): {', '.join(sorted(unknown))}.")
    if current.done_at is not None:
        raise FollowUpInvalid("A done task cannot be edited; reopen it first.")
    if "kind" in fields:
        current.kind = _clean_kind(fields["kind"])
    if "title" in fields:
        current.title = _clean_text(fields["title"], field="title", limit=TITLE_MAX, required=True)
    if "notes" in fields:
        current.notes = _clean_text(fields["notes"], field="notes", limit=NOTES_MAX, required=False)
    if "due_at" in fields and fields["due_at"] != current.due_at:
        current.due_at = _clean_due(fields["due_at"], now)
        current.reminded_at = None  # a new due time gets its own notice
    if "assignee" in fields and fields["assignee"] is not None:
        current.assignee_id = _assignee(
            actor, fields["assignee"], current.assignee_id, current.organization_id
        )
    current.save()
    return current


@transaction.atomic
def followup_complete(
    *, follow_up: FollowUp, actor: Membership | None, now: datetime | None = None
) -> FollowUp:
    """Mark a task done (done twice is still done once: the first time is kept)."""
    current = _locked(follow_up, actor)
    if current.done_at is None:
        current.done_at = now or timezone.now()
        current.save(update_fields=["done_at", "updated_at"])
    return current


@transaction.atomic
def followup_reopen(*, follow_up: FollowUp, actor: Membership | None) -> FollowUp:
    """A done task is open again, with its due time as it was."""
    current = _locked(follow_up, actor)
    if current.done_at is not None:
        current.done_at = None
        current.save(update_fields=["done_at", "updated_at"])
    return current


# --- "Task due" notices (beat) ----------------------------------------------------------


def task_due_notices(*, organization_id: int, follow_ups: list[FollowUp], now: datetime) -> int:
    """One "task due" notice per task and due time, to its assignee, through the
    one notification entry (bell, and email as the member prefers it)."""
    from pipeline.models import NotificationKind
    from pipeline.services.notifications import Notice, notify_many

    notices = [
        Notice(
            recipient_id=task.assignee_id,
            kind=NotificationKind.TASK_DUE,
            message=f"Task due: {task.title} — {task.subject_lead}"[:500],
            lead_id=task.subject_lead.pk,
            opportunity_id=task.opportunity_id,
            key=f"task_due:{task.pk}:{task.due_at.isoformat()}",
        )
        for task in follow_ups
    ]
    return len(notify_many(notices=notices, now=now))


@transaction.atomic
def follow_ups_remind(*, organization_id: int, now: datetime | None = None) -> int:
    """Notify the assignee of every open task that has come due, once per due time.

    Set-based and idempotent: the due, not-yet-reminded rows are locked (others
    running the sweep skip them), stamped `reminded_at` and notified in the same
    transaction; a second run finds nothing."""
    now = now or timezone.now()
    due = list(
        FollowUp.objects.select_for_update(of=("self",), skip_locked=True)
        .filter(done_at__isnull=True, reminded_at__isnull=True, due_at__lte=now)
        .select_related("lead", "opportunity__lead")
        .order_by("due_at", "pk")[:REMIND_BATCH]
    )
    if not due:
        return 0
    FollowUp.objects.filter(pk__in=[t.pk for t in due]).update(reminded_at=now)
    return task_due_notices(organization_id=organization_id, follow_ups=due, now=now)
