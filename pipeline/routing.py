"""Route MQLs to reps: account owner first, then routing rules in priority
order, then the default team.

Within a team the next lead goes to the available rep (not away, under
capacity) with the lowest round-robin pass (stride scheduling: each lead adds
1/weight to the rep's pass, so weights share leads proportionally and equal
weights take turns, least recently assigned first); the open-lead count breaks
ties. "Least loaded" rules pick the lowest load against capacity instead.

Concurrency: before counting anyone's open leads, routing locks the
Membership rows of every rep it may pick (SELECT … FOR UPDATE, in id order, so
two routers never deadlock) and then the team-member rows. Any other router
that may give one of those reps a lead waits, and then counts the leads the
first one committed — two MQLs at once never overfill a rep, even a rep who
sits in two teams or is targeted directly by a rule.

Set-based: routing N leads costs a constant number of statements.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Case, Count, F, IntegerField, OuterRef, Q, Subquery, Value, When
from django.utils import timezone

from accounts.models import Membership, Organization, Role
from leadflow.core.db import bulk_update_from_values
from leads.models import Activity, Lead, LeadStage
from pipeline.errors import RoutingConfigError
from pipeline.models import (
    OPEN_STAGES,
    ROUTING_FIELDS,
    Assignment,
    AssignmentMethod,
    PipelinePolicy,
    RoutingMethod,
    RoutingRule,
    TeamMember,
)
from pipeline.policy import policy_get
from pipeline.sla import ARRIVAL_KINDS, at_risk_at, due_times
from scoring import fields as scoring_fields
from scoring.fields import RuleError

SELLER_ROLES = (Role.SALES_REP, Role.ADMIN)
_PIPELINE_FIELDS = {"score", "fit_score", "grade", "band"}  # Lead columns outside scoring.fields


# --- Conditions ----------------------------------------------------------------------


def clean_conditions(conditions: Any) -> list[dict]:
    """Validate and normalize a rule's [{field, operator, value}] (raises RoutingConfigError)."""
    if not isinstance(conditions, list):
        raise RoutingConfigError("Conditions are a list of {field, operator, value}.")
    cleaned = []
    for item in conditions:
        if not isinstance(item, dict) or item.get("field") not in ROUTING_FIELDS:
            raise RoutingConfigError(f"Routing can test: {', '.join(ROUTING_FIELDS.values())}.")
        name, operator = item["field"], str(item.get("operator") or "")
        try:
            value = _normalize(name, operator, item.get("value"))
        except RuleError as exc:
            raise RoutingConfigError(f"{ROUTING_FIELDS[name]}: {exc}") from None
        cleaned.append({"field": name, "operator": operator, "value": value})
    return cleaned


def _normalize(name: str, operator: str, value: Any) -> Any:
    if name in ("score", "fit_score"):
        # Score columns behave like the numeric company_size field.
        return scoring_fields.normalize_value("company_size", operator, value)
    if name in ("grade", "band"):
        return scoring_fields.normalize_value("country", operator, value)
    return scoring_fields.normalize_value(name, operator, value)


def condition_q(conditions: list[dict]) -> Q:
    """All conditions of a rule as one Q on Lead (compiled by scoring.fields)."""
    q = Q()
    for item in conditions:
        name, operator = item["field"], item["operator"]
        value = _normalize(name, operator, item.get("value"))
        if name in ("score", "fit_score"):
            q &= _number_q(name, operator, value)
        elif name in ("grade", "band"):
            # The same case-insensitive text comparison scoring uses for its fields.
            q &= scoring_fields._text(F(name), operator, value)
        else:
            q &= scoring_fields.condition(name, operator, value)
    # A rule without conditions catches every lead (When() refuses an empty Q).
    return q or Q(pk__isnull=False)


def _number_q(column: str, operator: str, value: Any) -> Q:
    if operator in scoring_fields.LIST_OPS:
        q = Q(**{f"{column}__in": [scoring_fields.to_number(v) for v in value]})
        return ~q if operator == "not_in" else q
    if operator in scoring_fields.NO_VALUE_OPS:
        return Q(**{f"{column}__isnull": operator == "empty"})
    return scoring_fields._compare(F(column), operator, value)


# --- Candidates ----------------------------------------------------------------------


@dataclass
class Rep:
    membership_id: int
    name: str
    open_count: int = 0
    capacity: int | None = None  # None: in no team, no limit configured
    away: bool = False
    seats: list[TeamMember] = field(default_factory=list)

    def available(self) -> bool:
        return not self.away and (self.capacity is None or self.open_count < self.capacity)


@dataclass
class Pick:
    rep: Rep
    method: str
    reason: str
    team_id: int | None = None
    rule: RoutingRule | None = None
    seat: TeamMember | None = None


class Router:
    """Loads, locks and picks; `route()` and `write()` are split so callers can reuse picks."""

    def __init__(self, organization_id: int, now: datetime):
        self.organization_id = organization_id
        self.now = now
        self.rules = list(
            RoutingRule.objects.filter(is_active=True)
            .select_related("target_team", "target_rep__user")
            .order_by("priority", "pk")
        )
        self.reps: dict[int, Rep] = {}
        self.team_seats: dict[int, list[TeamMember]] = defaultdict(list)
        self.default_team_id: int | None = None
        self.default_team_name = ""

    def annotated_leads(self, lead_ids: list[int], *, unassigned_only: bool) -> list[dict]:
        rule_match = Case(
            *[When(condition_q(r.conditions or []), then=Value(r.pk)) for r in self.rules],
            default=Value(None),
            output_field=IntegerField(),
        )
        account_owner = (
            Lead.objects.filter(company_id=OuterRef("company_id"), owner__isnull=False)
            .exclude(pk=OuterRef("pk"))
            .order_by(F("assigned_at").desc(nulls_last=True), "-pk")
            .values("owner_id")[:1]
        )
        arrival = (
            Activity.objects.filter(lead_id=OuterRef("pk"), kind__in=list(ARRIVAL_KINDS))
            .order_by("-occurred_at", "-pk")
            .values("kind")[:1]
        )
        qs = Lead.objects.filter(
            pk__in=lead_ids,
            stage__in=OPEN_STAGES,
            discarded_at__isnull=True,
            merged_into__isnull=True,
        )
        if unassigned_only:
            qs = qs.exclude(
                pk__in=Assignment.objects.filter(lead_id__in=lead_ids, is_current=True).values(
                    "lead_id"
                )
            )
        return list(
            qs.annotate(
                rule_match=rule_match,
                account_owner=Subquery(account_owner),
                arrival=Subquery(arrival),
            )
            .order_by("-score", "pk")
            .values("pk", "stage", "company_name", "rule_match", "account_owner", "arrival")
        )

    def lock_and_load(self, leads: list[dict]) -> None:
        """Lock every rep these leads could go to, then read their seats and loads."""
        rules = {r.pk: r for r in self.rules}
        team_ids = {rules[x["rule_match"]].target_team_id for x in leads if x["rule_match"]}
        direct = {rules[x["rule_match"]].target_rep_id for x in leads if x["rule_match"]}
        direct |= {x["account_owner"] for x in leads if x["account_owner"]}
        team_ids.discard(None)
        direct.discard(None)
        seated = TeamMember.objects.filter(Q(team_id__in=team_ids) | Q(team__is_default=True))
        locked = list(
            Membership.objects.select_for_update(of=("self",))
            .filter(organization_id=self.organization_id, is_active=True, role__in=SELLER_ROLES)
            .filter(Q(pk__in=direct) | Q(pk__in=seated.values("membership_id")))
            .select_related("user")
            .order_by("pk")
        )
        self.reps = {m.pk: Rep(m.pk, m.user.display_name) for m in locked}
        # Every seat of a locked rep: capacity and away hold across teams.
        seats = (
            TeamMember.objects.select_for_update(of=("self",))
            .filter(membership_id__in=list(self.reps))
            .select_related("team")
            .order_by("pk")
        )
        for seat in seats:
            rep = self.reps[seat.membership_id]
            rep.seats.append(seat)
            rep.capacity = (
                seat.capacity if rep.capacity is None else min(rep.capacity, seat.capacity)
            )
            rep.away = rep.away or seat.is_away
            self.team_seats[seat.team_id].append(seat)
            if seat.team.is_default:
                self.default_team_id, self.default_team_name = seat.team_id, seat.team.name
        counts = (
            Lead.objects.filter(owner_id__in=list(self.reps), stage__in=OPEN_STAGES)
            .values("owner_id")
            .annotate(n=Count("pk"))
        )
        for row in counts:
            self.reps[row["owner_id"]].open_count = row["n"]

    def pick_in_team(
        self, team_id: int, method: str, exclude: set[int]
    ) -> tuple[TeamMember | None, int]:
        seats = [
            s
            for s in self.team_seats.get(team_id, [])
            if s.membership_id not in exclude and self.reps[s.membership_id].available()
        ]
        if not seats:
            return None, 0

        def load(s: TeamMember) -> float:
            rep = self.reps[s.membership_id]
            return rep.open_count / (rep.capacity or s.capacity)

        epoch = datetime.min.replace(tzinfo=self.now.tzinfo)
        if method == RoutingMethod.LEAST_LOADED:
            key = lambda s: (load(s), s.rr_pass, s.last_assigned_at or epoch, s.pk)  # noqa: E731
        else:
            key = lambda s: (s.rr_pass, load(s), s.last_assigned_at or epoch, s.pk)  # noqa: E731
        return min(seats, key=key), len(seats)

    def pick(self, lead: dict, exclude: set[int]) -> Pick | None:
        owner = self.reps.get(lead["account_owner"] or 0)
        if owner and owner.membership_id not in exclude and owner.available():
            company = lead["company_name"] or "this company"
            return Pick(owner, AssignmentMethod.ACCOUNT_OWNER, f"Account owner of {company}")
        rule = next((r for r in self.rules if r.pk == lead["rule_match"]), None)
        prefix = ""
        if rule is not None:
            if rule.target_rep_id:
                rep = self.reps.get(rule.target_rep_id)
                if rep and rep.membership_id not in exclude and rep.available():
                    return Pick(
                        rep,
                        AssignmentMethod.RULE,
                        f"Matched rule {rule.name} → {rep.name}",
                        rule=rule,
                    )
                prefix = f"Rule {rule.name}: {rule.target_rep.user.display_name} unavailable → "
            else:
                seat, n = self.pick_in_team(rule.target_team_id, rule.method, exclude)
                if seat:
                    how = RoutingMethod(rule.method).label.lower()
                    return Pick(
                        self.reps[seat.membership_id],
                        rule.method,
                        f"Matched rule {rule.name} → {how} among {n} rep{'s' * (n != 1)}",
                        team_id=seat.team_id,
                        rule=rule,
                        seat=seat,
                    )
                prefix = f"Rule {rule.name}: no rep available in {rule.target_team.name} → "
        if self.default_team_id:
            seat, n = self.pick_in_team(self.default_team_id, RoutingMethod.ROUND_ROBIN, exclude)
            if seat:
                lead_in = prefix or "No rule matched → "
                return Pick(
                    self.reps[seat.membership_id],
                    AssignmentMethod.DEFAULT_TEAM,
                    f"{lead_in}default team {self.default_team_name}, round robin among {n}",
                    team_id=seat.team_id,
                    rule=rule,
                    seat=seat,
                )
        return None

    def take(self, pick: Pick) -> None:
        """Count the lead against the rep and move them along the round robin."""
        pick.rep.open_count += 1
        if pick.seat is not None:
            pick.seat.rr_pass += 1.0 / max(pick.seat.weight, 1)
            pick.seat.last_assigned_at = self.now


def write_assignments(
    *,
    organization_id: int,
    planned: list[tuple[dict, Pick]],
    policy: PipelinePolicy,
    tz: str,
    now: datetime,
    assigned_by: Membership | None = None,
    method: str | None = None,
    reason_prefix: str = "",
    seats: list[TeamMember] | None = None,
) -> list[Assignment]:
    """End the leads' current assignments and write the new ones (constant statements).

    Leads past MQL stay accepted with the new rep; their first touch carries over."""
    if not planned:
        return []
    lead_ids = [lead["pk"] for lead, _ in planned]
    current = Assignment.objects.filter(lead_id__in=lead_ids, is_current=True)
    previous, previous_owner = {}, {}
    for lead_id, first_touched_at, membership_id in current.values_list(
        "lead_id", "first_touched_at", "membership_id"
    ):
        previous[lead_id], previous_owner[lead_id] = first_touched_at, membership_id
    if previous:
        Assignment.objects.filter(lead_id__in=list(previous), is_current=True).update(
            is_current=False
        )
    rows = []
    for lead, pick in planned:
        first_due, accept_due = due_times(policy, tz, now, lead.get("arrival"))
        accepted = lead["stage"] != LeadStage.MQL
        rows.append(
            Assignment(
                organization_id=organization_id,
                lead_id=lead["pk"],
                membership_id=pick.rep.membership_id,
                team_id=pick.team_id,
                rule=pick.rule,
                method=method or pick.method,
                reason=(reason_prefix + pick.reason)[:300],
                assigned_at=now,
                assigned_by=assigned_by,
                first_touch_due_at=first_due,
                accept_due_at=None if accepted else accept_due,
                accepted_at=now if accepted else None,
                first_touched_at=previous.get(lead["pk"]) if accepted else None,
            )
        )
        rows[-1].at_risk_at = at_risk_at(now, rows[-1].sla_due_at())
    created = Assignment.objects.bulk_create(rows)
    owners = []
    for lead, pick in planned:
        obj = Lead(pk=lead["pk"], owner_id=pick.rep.membership_id, assigned_at=now, updated_at=now)
        owners.append(obj)
    bulk_update_from_values(owners, ["owner", "assigned_at", "updated_at"])
    if seats:
        bulk_update_from_values(seats, ["rr_pass", "last_assigned_at"])
    # Late import: pipeline.services (a package whose __init__ imports this module)
    # holds notify(); it does not import routing back.
    from pipeline.services.notifications import assignment_notices

    assignment_notices(assignments=created, previous_owner=previous_owner, now=now)
    return created


@transaction.atomic
def leads_route(
    *,
    organization_id: int,
    lead_ids: list[int],
    now: datetime | None = None,
    reassign: bool = False,
    exclude: dict[int, set[int]] | None = None,
    method: str | None = None,
    reason_prefix: str = "",
) -> list[Assignment]:
    """Assign each open, unassigned lead of `lead_ids` to a rep (see the module doc).

    Leads nobody can take stay unassigned (the team view lists them).
    `reassign=True` also moves leads that have a rep; `exclude` maps lead id →
    reps it must not go to (an SLA reassignment skips the rep who missed it)."""
    now = now or timezone.now()
    ids = list(dict.fromkeys(lead_ids))
    if not ids:
        return []
    router = Router(organization_id, now)
    leads = router.annotated_leads(ids, unassigned_only=not reassign)
    if not leads:
        return []
    router.lock_and_load(leads)
    planned = []
    for lead in leads:
        pick = router.pick(lead, (exclude or {}).get(lead["pk"], set()))
        if pick is not None:
            router.take(pick)
            planned.append((lead, pick))
    policy = policy_get(organization_id=organization_id)
    touched_seats = list({id(p.seat): p.seat for _, p in planned if p.seat}.values())
    return write_assignments(
        organization_id=organization_id,
        planned=planned,
        policy=policy,
        tz=org_timezone(organization_id),
        now=now,
        method=method,
        reason_prefix=reason_prefix,
        seats=touched_seats,
    )


def org_timezone(organization_id: int) -> str:
    zone = Organization.objects.filter(pk=organization_id).values_list("timezone", flat=True)
    return zone.first() or "UTC"


def lead_arrival(lead_id: int) -> str | None:
    """The kind of the lead's latest arrival touch (picks its first-touch SLA)."""
    latest = Activity.objects.filter(lead_id=lead_id, kind__in=list(ARRIVAL_KINDS))
    return latest.order_by("-occurred_at", "-pk").values_list("kind", flat=True).first()
