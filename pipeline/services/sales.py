"""What sales does with a lead: accept or reject it, log touches, qualify it
with BANT, turn it into an opportunity, win or lose it, recycle, reopen,
disqualify — and reassign it by hand.

A sales rep may act only on leads assigned to them (NotYourLead, a 404 in the
views); admins may act on any lead. Every stage change goes through
stage_transition.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.dateparse import parse_date

from accounts.models import Membership, Role
from accounts.permissions import Perm
from leads.models import Activity, ActivityKind, Lead, LeadStage
from pipeline.errors import (
    NotYourLead,
    OpportunityInvalid,
    QualificationIncomplete,
    QualificationInvalid,
    RepUnavailable,
    TransitionNotAllowed,
)
from pipeline.models import (
    OPEN_STAGES,
    Assignment,
    AssignmentMethod,
    Bant,
    CallOutcome,
    DealStage,
    Opportunity,
    OpportunityStatus,
    Qualification,
    StageTransition,
    TeamMember,
    TimingWindow,
)
from pipeline.policy import policy_get
from pipeline.routing import SELLER_ROLES, Pick, Rep, lead_arrival, org_timezone, write_assignments
from pipeline.services.followups import followup_create
from pipeline.services.transitions import stage_transition
from pipeline.stages import RejectReason, check_move

TOUCH_KINDS = (ActivityKind.CALL, ActivityKind.MEETING, ActivityKind.NOTE)
MAX_AMOUNT = Decimal("999999999999.99")
CLOCK_SKEW = timedelta(minutes=5)


def _locked_lead(lead: Lead, actor: Membership, permission: Perm = Perm.WORK_LEADS) -> Lead:
    """Lock the lead row and check the actor may work it (fresh owner and stage)."""
    if not actor.has_perm(permission):
        raise TransitionNotAllowed("Your role cannot do this.")
    current = Lead.objects.select_for_update().only("stage", "owner_id").get(pk=lead.pk)
    if actor.role == Role.SALES_REP and current.owner_id != actor.pk:
        raise NotYourLead("This lead is not assigned to you.")
    lead.stage, lead.owner_id = current.stage, current.owner_id
    return current


def _parse_money(value: Any, what: str, error: type[Exception]) -> Decimal:
    try:
        amount = Decimal(str(value).replace(",", "").strip())
    except (InvalidOperation, ValueError):
        raise error(f"{what} must be a number.") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise error(f"{what} must be between 0 and {MAX_AMOUNT:,}.")
    return amount.quantize(Decimal("0.01"))


def _currency(value: Any, default: str, error: type[Exception]) -> str:
    code = str(value or default).strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise error("The currency is a three-letter code such as USD or EUR.")
    return code


# --- Accept / reject -------------------------------------------------------------------


@transaction.atomic
def lead_accept(*, lead: Lead, actor: Membership, now: datetime | None = None) -> StageTransition:
    """The assigned rep accepts an MQL: it becomes SAL and the accept clock stops."""
    now = now or timezone.now()
    current = _locked_lead(lead, actor)
    if current.owner_id is None:
        raise TransitionNotAllowed("Assign the lead to a rep before accepting it.")
    if current.stage == LeadStage.SAL:
        raise TransitionNotAllowed("This lead has already been accepted.")
    transition = stage_transition(lead=lead, to=LeadStage.SAL, actor=actor, rule="accept", now=now)
    Assignment.objects.filter(lead_id=lead.pk, is_current=True, accepted_at__isnull=True).update(
        accepted_at=now
    )
    return transition


@transaction.atomic
def lead_reject(
    *, lead: Lead, actor: Membership, reason_code: str, reason: str = ""
) -> StageTransition:
    """The assigned rep turns an MQL down with a reason; it goes back to nurture (recycled)."""
    _locked_lead(lead, actor)
    if reason_code not in RejectReason.LABELS:
        raise TransitionNotAllowed("Pick why you are rejecting this lead.")
    if reason_code == "other" and not reason.strip():
        raise TransitionNotAllowed("Explain why you are rejecting this lead.")
    if lead.stage != LeadStage.MQL:
        raise TransitionNotAllowed("Only a lead waiting to be accepted can be rejected.")
    return stage_transition(
        lead=lead,
        to=LeadStage.RECYCLED,
        actor=actor,
        rule="reject",
        reason_code=reason_code,
        reason=reason.strip() or RejectReason.LABELS[reason_code],
    )


# --- Touches ---------------------------------------------------------------------------


@transaction.atomic
def lead_touch(
    *,
    lead: Lead,
    actor: Membership,
    kind: str,
    note: str,
    occurred_at: datetime | None = None,
    call_outcome: str = "",
    duration_seconds: int | None = None,
    next_step: dict[str, Any] | None = None,
) -> Activity:
    """Log a call, meeting or note; the first one stops the first-touch SLA clock.

    A call carries its outcome (connected, voicemail, no answer, wrong number)
    and duration; `next_step` ({kind, title, due_at}) creates the follow-up task
    in the same transaction (both are stored or neither)."""
    now = timezone.now()
    occurred_at = occurred_at or now
    if kind not in TOUCH_KINDS:
        raise TransitionNotAllowed("Log a call, a meeting or a note.")
    call = _call_properties(kind, call_outcome, duration_seconds)
    note = (note or "").strip()
    if kind == ActivityKind.NOTE and not note:
        raise TransitionNotAllowed("A note needs some text.")
    if occurred_at > now + CLOCK_SKEW:
        raise TransitionNotAllowed("A touch cannot be logged in the future.")
    _locked_lead(lead, actor)
    activity = Activity.objects.create(
        organization_id=lead.organization_id,
        lead_id=lead.pk,
        kind=kind,
        occurred_at=occurred_at,
        properties={"note": note[:5000], "logged_by": actor.pk, **call},
    )
    if next_step:
        followup_create(actor=actor, lead=lead, now=now, **next_step)
    Lead.objects.filter(pk=lead.pk).update(last_activity_at=occurred_at, updated_at=now)
    Assignment.objects.filter(
        lead_id=lead.pk, is_current=True, first_touched_at__isnull=True
    ).update(first_touched_at=occurred_at)
    return activity


MAX_CALL_SECONDS = 24 * 3600


def _call_properties(kind: str, outcome: str, duration_seconds: int | None) -> dict[str, Any]:
    """A call's outcome and duration for the activity's properties (only calls have them)."""
    if kind != ActivityKind.CALL:
        if outcome or duration_seconds is not None:
            raise TransitionNotAllowed("Only a call has an outcome and a duration.")
        return {}
    out: dict[str, Any] = {}
    if outcome:
        if outcome not in CallOutcome.values:
            raise TransitionNotAllowed("Pick the call's outcome from the list.")
        out["outcome"] = outcome
    if duration_seconds is not None:
        if not 0 <= int(duration_seconds) <= MAX_CALL_SECONDS:
            raise TransitionNotAllowed("A call lasts between 0 seconds and a day.")
        out["duration_seconds"] = int(duration_seconds)
    return out


# --- Qualification (BANT) ------------------------------------------------------------

QUALIFICATION_FIELDS = {
    "budget_amount",
    "budget_currency",
    "budget_confirmed",
    "authority_role",
    "decision_maker",
    "need",
    "timing_window",
    "timing_date",
}


def _optional_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("", "unknown", "none"):
        return None
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise QualificationInvalid("Decision maker is yes, no or unknown.")


def _clean_qualification(data: dict[str, Any], default_currency: str) -> dict[str, Any]:
    unknown = set(data) - QUALIFICATION_FIELDS
    if unknown:
        raise QualificationInvalid(f"Unknown qualification field(s): {', '.join(sorted(unknown))}.")
    out: dict[str, Any] = {}
    if "budget_amount" in data:
        raw = data["budget_amount"]
        empty = raw is None or str(raw).strip() == ""
        out["budget_amount"] = None if empty else _parse_money(raw, "Budget", QualificationInvalid)
    if "budget_currency" in data or out.get("budget_amount") is not None:
        out["budget_currency"] = _currency(
            data.get("budget_currency"), default_currency, QualificationInvalid
        )
    if "budget_confirmed" in data:
        out["budget_confirmed"] = bool(data["budget_confirmed"])
    for name, limit in (("authority_role", 200), ("need", 5000)):
        if name in data:
            text = str(data[name] or "").strip()
            if len(text) > limit:
                raise QualificationInvalid(f"{name.replace('_', ' ').capitalize()} is too long.")
            out[name] = text
    if "decision_maker" in data:
        out["decision_maker"] = _optional_bool(data["decision_maker"])
    if "timing_window" in data:
        window = str(data["timing_window"] or "")
        if window and window not in TimingWindow.values:
            raise QualificationInvalid("Pick a purchase window from the list.")
        out["timing_window"] = window
    if "timing_date" in data:
        value = data["timing_date"]
        if isinstance(value, str):
            value = parse_date(value.strip()) if value.strip() else None
            if value is None and str(data["timing_date"]).strip():
                raise QualificationInvalid("The purchase date is a date (YYYY-MM-DD).")
        if value is not None and not isinstance(value, date):
            raise QualificationInvalid("The purchase date is a date (YYYY-MM-DD).")
        out["timing_date"] = value
    return out


@transaction.atomic
def qualification_save(*, lead: Lead, actor: Membership, data: dict[str, Any]) -> Qualification:
    """Store the BANT notes given in `data` (other parts are kept as they were)."""
    _locked_lead(lead, actor)
    if lead.stage not in OPEN_STAGES:
        raise QualificationInvalid("Only a lead in the pipeline can be qualified.")
    policy = policy_get(organization_id=lead.organization_id)
    values = _clean_qualification(data, policy.default_currency)
    qualification, _ = Qualification.objects.get_or_create(
        lead_id=lead.pk, defaults={"organization_id": lead.organization_id}
    )
    for name, value in values.items():
        setattr(qualification, name, value)
    qualification.updated_by = actor
    qualification.save()
    return qualification


@transaction.atomic
def lead_qualify(*, lead: Lead, actor: Membership) -> StageTransition:
    """SAL → SQL, only once the organization's required BANT parts are filled in."""
    _locked_lead(lead, actor)
    check_move(lead.stage, LeadStage.SQL, actor, "")
    required = policy_get(organization_id=lead.organization_id).bant_required or []
    qualification = Qualification.objects.filter(lead_id=lead.pk).first() or Qualification()
    missing = qualification.missing(required)
    if missing:
        labels = dict(Bant.choices)
        raise QualificationIncomplete(
            "Qualify the lead first — missing: " + ", ".join(labels[m] for m in missing) + "."
        )
    return stage_transition(lead=lead, to=LeadStage.SQL, actor=actor, rule="bant")


# --- Opportunities ---------------------------------------------------------------------


def _clean_opportunity(fields: dict[str, Any], default_currency: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "amount" in fields:
        if fields["amount"] is None or str(fields["amount"]).strip() == "":
            raise OpportunityInvalid("An opportunity needs an amount.")
        out["amount"] = _parse_money(fields["amount"], "The amount", OpportunityInvalid)
    if "currency" in fields:
        out["currency"] = _currency(fields["currency"], default_currency, OpportunityInvalid)
    if "probability" in fields and fields["probability"] not in (None, ""):
        try:
            probability = int(fields["probability"])
        except (TypeError, ValueError):
            raise OpportunityInvalid("The probability is a whole percentage.") from None
        if not 0 <= probability <= 100:
            raise OpportunityInvalid("The probability is between 0 and 100 %.")
        out["probability"] = probability
    if "expected_close_date" in fields:
        value = fields["expected_close_date"]
        if isinstance(value, str):
            value = parse_date(value.strip()) if value.strip() else None
        if value is not None and not isinstance(value, date):
            raise OpportunityInvalid("The expected close date is a date (YYYY-MM-DD).")
        out["expected_close_date"] = value
    for name, limit in (("next_step", 300), ("name", 200)):
        if name in fields:
            text = str(fields[name] or "").strip()
            if len(text) > limit:
                raise OpportunityInvalid(f"The {name.replace('_', ' ')} is too long.")
            out[name] = text
    return out


@transaction.atomic
def opportunity_open(
    *,
    lead: Lead,
    actor: Membership,
    amount: Any,
    currency: str | None = None,
    expected_close_date: date | str | None = None,
    probability: int | None = None,
    next_step: str = "",
    name: str = "",
) -> Opportunity:
    """SQL → opportunity: sales entered an amount."""
    _locked_lead(lead, actor)
    check_move(lead.stage, LeadStage.OPPORTUNITY, actor, "")
    policy = policy_get(organization_id=lead.organization_id)
    values = _clean_opportunity(
        {
            "amount": amount,
            "currency": currency,
            "expected_close_date": expected_close_date,
            "probability": probability,
            "next_step": next_step,
            "name": name,
        },
        policy.default_currency,
    )
    if values["amount"] <= 0:
        raise OpportunityInvalid("An opportunity needs an amount above zero.")
    values["name"] = values.get("name") or _deal_name(lead)
    values.setdefault("probability", 20)
    stage_transition(lead=lead, to=LeadStage.OPPORTUNITY, actor=actor, rule="opportunity")
    opportunity, _ = Opportunity.objects.update_or_create(
        lead_id=lead.pk,
        defaults={
            **values,
            "organization_id": lead.organization_id,
            "status": OpportunityStatus.OPEN,
            "closed_at": None,
            "close_reason": "",
            "owner_id": lead.owner_id or actor.pk,
            "stage_id": _first_stage_id(lead.organization_id, OpportunityStatus.OPEN),
        },
    )
    return opportunity


def _deal_name(lead: Lead) -> str:
    who = lead.company_name or lead.full_name or lead.email or f"Lead {lead.pk}"
    return f"{who} deal"[:200]


def _first_stage_id(organization_id: int, status: str) -> int | None:
    """The board column a deal of this status goes to when nothing chose one
    (pipeline.services.deal_stages moves it on from there)."""
    return (
        DealStage.objects.filter(organization_id=organization_id, kind=status)
        .order_by("position", "pk")
        .values_list("pk", flat=True)
        .first()
    )


def _locked_opportunity(opportunity: Opportunity, actor: Membership) -> Opportunity:
    lead = Lead(pk=opportunity.lead_id, organization_id=opportunity.organization_id)
    _locked_lead(lead, actor)
    return Opportunity.objects.select_for_update().get(pk=opportunity.pk)


@transaction.atomic
def opportunity_update(
    *, opportunity: Opportunity, actor: Membership, **fields: Any
) -> Opportunity:
    """Change an open deal's amount, currency, close date, probability, next step or name."""
    current = _locked_opportunity(opportunity, actor)
    if current.status != OpportunityStatus.OPEN:
        raise OpportunityInvalid("A closed deal cannot be edited; reopen it first.")
    unknown = set(fields) - {
        "amount", "currency", "expected_close_date", "probability", "next_step", "name"
    }  # fmt: skip
    if unknown:
        raise OpportunityInvalid(f"Unknown opportunity field(s): {', '.join(sorted(unknown))}.")
    values = _clean_opportunity(fields, current.currency)
    if "name" in values and not values["name"]:
        raise OpportunityInvalid("The deal needs a name.")
    for name, value in values.items():
        setattr(current, name, value)
        setattr(opportunity, name, value)
    current.save()
    opportunity.updated_at = current.updated_at
    return current


@transaction.atomic
def opportunity_close(
    *,
    opportunity: Opportunity,
    actor: Membership,
    won: bool,
    reason: str = "",
    closed_at: datetime | None = None,
) -> Opportunity:
    """Won or lost (lost needs a reason), on a date not in the future."""
    now = timezone.now()
    closed_at = closed_at or now
    if closed_at > now + CLOCK_SKEW:
        raise OpportunityInvalid("A deal cannot be closed in the future.")
    current = _locked_opportunity(opportunity, actor)
    if current.status != OpportunityStatus.OPEN:
        raise OpportunityInvalid("This deal is already closed.")
    to = LeadStage.WON if won else LeadStage.LOST
    lead = Lead(pk=current.lead_id, organization_id=current.organization_id)
    stage_transition(lead=lead, to=to, actor=actor, rule="close", reason=reason, now=now)
    current.status = OpportunityStatus.WON if won else OpportunityStatus.LOST
    current.closed_at = closed_at
    current.close_reason = reason.strip()
    current.probability = 100 if won else 0
    current.stage_id = _first_stage_id(current.organization_id, current.status)
    current.save()
    return current


@transaction.atomic
def lead_reopen(*, lead: Lead, actor: Membership, reason: str) -> Opportunity:
    """Lost → opportunity again (with a reason); the deal is open once more."""
    _locked_lead(lead, actor)
    stage_transition(lead=lead, to=LeadStage.OPPORTUNITY, actor=actor, rule="reopen", reason=reason)
    opportunity = Opportunity.objects.select_for_update().get(lead_id=lead.pk)
    opportunity.status = OpportunityStatus.OPEN
    opportunity.closed_at = None
    opportunity.close_reason = ""
    opportunity.probability = opportunity.probability or 10
    opportunity.stage_id = _first_stage_id(opportunity.organization_id, OpportunityStatus.OPEN)
    opportunity.save()
    return opportunity


# --- Out of the pipeline ---------------------------------------------------------------


@transaction.atomic
def lead_recycle(
    *, lead: Lead, actor: Membership, reason_code: str, reason: str
) -> StageTransition:
    """Back to nurture with a reason (from wherever the table allows); the rep lets go."""
    _locked_lead(lead, actor, Perm.VIEW_LEADS)
    return stage_transition(
        lead=lead,
        to=LeadStage.RECYCLED,
        actor=actor,
        rule="recycle",
        reason_code=reason_code,
        reason=reason,
    )


@transaction.atomic
def lead_disqualify(*, lead: Lead, actor: Membership, reason: str) -> StageTransition:
    """Out of the funnel for good (not a fit); needs a reason."""
    _locked_lead(lead, actor, Perm.VIEW_LEADS)
    return stage_transition(
        lead=lead, to=LeadStage.DISQUALIFIED, actor=actor, rule="disqualify", reason=reason
    )


# --- Manual assignment ---------------------------------------------------------------


@transaction.atomic
def lead_assign(
    *,
    lead: Lead,
    membership: Membership,
    actor: Membership,
    reason: str = "",
    override_capacity: bool = False,
) -> Assignment:
    """An admin or marketer hands a lead in the pipeline to a rep by hand.

    The rep must be an active seller of the organization, not away and under
    capacity (unless `override_capacity`)."""
    if not actor.has_perm(Perm.ASSIGN_LEADS):
        raise TransitionNotAllowed("Only admins and marketers can reassign leads.")
    current = Lead.objects.select_for_update().only("stage", "owner_id").get(pk=lead.pk)
    if current.stage not in OPEN_STAGES:
        raise TransitionNotAllowed("Only a lead in the pipeline (MQL to opportunity) is assigned.")
    rep = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(
            pk=membership.pk,
            organization_id=lead.organization_id,
            is_active=True,
            role__in=SELLER_ROLES,
        )
        .first()
    )
    if rep is None:
        raise RepUnavailable("Leads go to active sales reps or admins of this organization.")
    if current.owner_id == rep.pk:
        raise RepUnavailable(f"The lead is already assigned to {rep.user.display_name}.")
    seats = list(TeamMember.objects.filter(membership_id=rep.pk))
    if any(seat.is_away for seat in seats):
        raise RepUnavailable(f"{rep.user.display_name} is away.")
    capacity = min((seat.capacity for seat in seats), default=None)
    if capacity is not None and not override_capacity:
        load = Lead.objects.filter(owner_id=rep.pk, stage__in=OPEN_STAGES).aggregate(n=Count("pk"))
        if load["n"] >= capacity:
            raise RepUnavailable(
                f"{rep.user.display_name} is at capacity ({load['n']} of {capacity} open leads)."
            )
    now = timezone.now()
    by = actor.user.display_name if actor.user_id else "an admin"
    text = f"Assigned by {by}" + (f": {reason.strip()}" if reason.strip() else "")
    pick = Pick(Rep(rep.pk, rep.user.display_name), AssignmentMethod.MANUAL, text)
    [assignment] = write_assignments(
        organization_id=lead.organization_id,
        planned=[({"pk": lead.pk, "stage": current.stage, "arrival": lead_arrival(lead.pk)}, pick)],
        policy=policy_get(organization_id=lead.organization_id),
        tz=org_timezone(lead.organization_id),
        now=now,
        assigned_by=actor,
    )
    lead.owner_id, lead.assigned_at = rep.pk, now
    return assignment
