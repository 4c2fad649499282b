"""The SLA sweep: find assignments past their accept / first-touch deadline,
notify the rep and their team lead (in-app now, email through a task), and
after a second window reassign the lead to the next rep or recycle it, as the
policy says. Run per organization by pipeline.tasks.sla_check_org; pass `now`
to test at a given instant.

Idempotent: a breach is stamped once (breached_at) and escalated once
(escalated_at); a second run in the same minute finds nothing new.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from leadflow.core.tenancy import enqueue_on_commit
from leads.models import LeadStage
from pipeline.models import (
    OPEN_STAGES,
    Assignment,
    AssignmentMethod,
    BreachAction,
    Notification,
)
from pipeline.policy import policy_get
from pipeline.routing import leads_route
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
    result = {"breached": 0, "reassigned": 0, "recycled": 0}

    breached = list(
        Assignment.objects.select_for_update(of=("self",))
        .filter(_unresolved(now), breached_at__isnull=True)
        .select_related("lead", "team")
        .order_by("pk")
    )
    if breached:
        Assignment.objects.filter(pk__in=[a.pk for a in breached]).update(breached_at=now)
        notices = []
        for a in breached:
            lead_name = str(a.lead)
            message = f"SLA missed: {lead_name} was not {_what(a, now)} in time."
            recipients = {a.membership_id}
            if a.team and a.team.team_lead_id:
                recipients.add(a.team.team_lead_id)
            notices += [
                Notification(
                    organization_id=organization_id,
                    recipient_id=r,
                    lead_id=a.lead_id,
                    kind="sla_breach",
                    message=message[:500],
                    created_at=now,
                )
                for r in sorted(recipients)
            ]
        _notify(organization_id, notices)
        result["breached"] = len(breached)

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
        _notify(
            organization_id,
            [
                Notification(
                    organization_id=organization_id,
                    recipient_id=a.membership_id,
                    lead_id=a.lead_id,
                    kind="sla_reassigned",
                    message="A lead was reassigned to you after an SLA breach: act quickly.",
                    created_at=now,
                )
                for a in reassigned
            ],
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


def _notify(organization_id: int, notices: list[Notification]) -> None:
    if not notices:
        return
    created = Notification.objects.bulk_create(notices)
    from pipeline.tasks import send_notification_emails  # tasks import services: no cycle

    enqueue_on_commit(
        send_notification_emails,
        organization_id=organization_id,
        notification_ids=[n.pk for n in created],
    )
