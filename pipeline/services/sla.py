"""The SLA sweep: warn the rep when a deadline is near (SLA at risk), find
assignments past their accept / first-touch deadline, notify the rep and
escalate to their team lead(s) (through notify(): in-app now, email as each
member prefers), and
after a second window reassign the lead to the next rep or recycle it, as the
policy says. Run per organization by pipeline.tasks.sla_check_org; pass `now`
to test at a given instant.

Idempotent: a warning is stamped once (at_risk_notified_at), a breach once
(breached_at) and escalated once (escalated_at), and every notice carries a key
naming its assignment; a second run in the same minute finds nothing new.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from leads.models import LeadStage
from pipeline.models import (
    OPEN_STAGES,
    Assignment,
    AssignmentMethod,
    BreachAction,
    NotificationKind,
    TeamMember,
)
from pipeline.policy import policy_get
from pipeline.routing import leads_route
from pipeline.services.notifications import Notice, notify_many
from pipeline.services.transitions import stages_transition_many


def _unresolved(now: datetime) -> Q:
    """Current assignments with a deadline passed and the work not done."""
    late_accept = Q(accepted_at__isnull=True, accept_due_at__lt=now, lead__stage=LeadStage.MQL)
    late_touch = Q(first_touched_at__isnull=True, first_touch_due_at__lt=now)
    return Q(is_current=True, lead__stage__in=OPEN_STAGES) & (late_accept | late_touch)


def _what(assignment: Assignment, now: datetime) -> str:
    if (
        assignment.accepted_at is None
        and assignment.accept_due_at
        and assignment.accept_due_at < now
    ):
        return "accepted"
    return "contacted"


@transaction.atomic
def sla_check(*, organization_id: int, now: datetime | None = None) -> dict[str, int]:
    """One sweep of the organization; returns counts of what it did."""
    now = now or timezone.now()
    policy = policy_get(organization_id=organization_id)
    result = {"at_risk": 0, "breached": 0, "reassigned": 0, "recycled": 0}

    breached = list(
        Assignment.objects.select_for_update(of=("self",))
        .filter(_unresolved(now), breached_at__isnull=True)
        .select_related("lead", "team", "membership__user")
        .order_by("pk")
    )
    if breached:
        Assignment.objects.filter(pk__in=[a.pk for a in breached]).update(breached_at=now)
        notify_many(notices=_breach_notices(breached, now), now=now)
        result["breached"] = len(breached)
    result["at_risk"] = _warn_at_risk(now)

    # Second window: still not done long after the breach → reassign or recycle.
    cutoff = now - timedelta(minutes=policy.second_window_minutes)
    overdue = list(
        Assignment.objects.select_for_update(of=("self",))
        .filter(_unresolved(now), breached_at__lte=cutoff, escalated_at__isnull=True)
        .values_list("pk", "lead_id", "membership_id")
    )
    if not overdue:
        return result
    Assignment.objects.filter(pk__in=[pk for pk, _, _ in overdue]).update(escalated_at=now)
    lead_ids = [lead_id for _, lead_id, _ in overdue]
    reassigned: list[Assignment] = []
    if policy.breach_action == BreachAction.REASSIGN:
        reassigned = leads_route(
            organization_id=organization_id,
            lead_ids=lead_ids,
            now=now,
            reassign=True,
            exclude={lead_id: {rep} for _, lead_id, rep in overdue},
            method=AssignmentMethod.SLA_REASSIGN,
            reason_prefix="SLA missed by the previous rep. ",
        )
    # Nobody to take it (or the policy says so): back to nurture, never dropped.
    rerouted = {a.lead_id for a in reassigned}
    leftovers = [lead_id for lead_id in lead_ids if lead_id not in rerouted]
    recycled = stages_transition_many(
        organization_id=organization_id,
        lead_ids=leftovers,
        to=LeadStage.RECYCLED,
        rule="sla",
        reason_code="sla_missed",
        reason="Not worked within the SLA and its second window.",
        now=now,
    )
    result["reassigned"], result["recycled"] = len(reassigned), len(recycled)
    return result


def _team_leads(breached: list[Assignment]) -> dict[int, set[int]]:
    """Assignment id → the team leads to escalate to: the lead of the team it was
    routed through, else the leads of every team the rep sits in (a lead assigned by
    hand has no team). Never the rep themselves."""
    seats: dict[int, set[int]] = {}
    for membership_id, team_lead_id in TeamMember.objects.filter(
        membership_id__in={a.membership_id for a in breached}, team__team_lead__isnull=False
    ).values_list("membership_id", "team__team_lead_id"):
        seats.setdefault(membership_id, set()).add(team_lead_id)
    leads = {}
    for a in breached:
        found = {a.team.team_lead_id} if a.team and a.team.team_lead_id else set()
        leads[a.pk] = (found or seats.get(a.membership_id, set())) - {a.membership_id}
    return leads


def _breach_notices(breached: list[Assignment], now: datetime) -> list[Notice]:
    team_leads = _team_leads(breached)
    notices = []
    for a in breached:
        name, what = str(a.lead), _what(a, now)
        missed = f"{name} was not {what} in time."
        notices.append(Notice.about(a, NotificationKind.SLA_BREACH, f"SLA missed: {missed}"))
        escalation = f"SLA missed by {a.membership.user.display_name}: {missed}"
        notices += [
            Notice.about(a, NotificationKind.ESCALATION, escalation, to=team_lead)
            for team_lead in sorted(team_leads[a.pk])
        ]
    return notices


def _warn_at_risk(now: datetime) -> int:
    """Warn each rep once per assignment when its first open deadline is near
    (Assignment.at_risk_at, set when assigned: 80 % of the window) and not passed."""
    open_work = Q(accepted_at__isnull=True, accept_due_at__gte=now, lead__stage=LeadStage.MQL) | Q(
        first_touched_at__isnull=True, first_touch_due_at__gte=now
    )
    due = list(
        Assignment.objects.select_for_update(of=("self",))
        .filter(
            open_work,
            is_current=True,
            lead__stage__in=OPEN_STAGES,
            at_risk_at__lte=now,
            at_risk_notified_at__isnull=True,
            breached_at__isnull=True,
        )
        .select_related("lead")
        .order_by("pk")
    )
    if not due:
        return 0
    Assignment.objects.filter(pk__in=[a.pk for a in due]).update(at_risk_notified_at=now)
    notices = []
    for a in due:
        deadline = a.sla_due_at()
        minutes = max(1, round((deadline - now).total_seconds() / 60)) if deadline else 0
        message = f"SLA at risk: {a.lead} must be {_next_step(a)} within {minutes} min."
        notices.append(Notice.about(a, NotificationKind.SLA_AT_RISK, message))
    notify_many(notices=notices, now=now)
    return len(due)


def _next_step(assignment: Assignment) -> str:
    """What the nearest open deadline asks for."""
    accept_open = assignment.accepted_at is None and assignment.accept_due_at
    if accept_open and assignment.accept_due_at == assignment.sla_due_at():
        return "accepted"
    return "contacted"
