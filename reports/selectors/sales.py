"""The sales dashboard: what each rep (and team) did in the period, whether they
kept the speed-to-lead SLA, how loaded they are, and whether sales keeps up with
the MQLs marketing hands over (the "bubble").

A constant number of grouped queries whatever the number of reps or leads; the
rows are merged in Python. Credit rules (documented on the page too):
- assigned / SLA: the assignment's rep (a reassigned lead counts for both reps);
- accepted: assignments whose accept happened in the period;
- qualified: moves to SQL in the period, credited to whoever made the move, else
  the lead's owner;
- won: opportunities closed won in the period, credited to the deal's owner,
  else the lead's owner;
- calls before first connect: leads whose first connected call fell in the
  period, credited to the lead's owner; the calls logged before that one;
- a team's row is the sum of its members' rows (a rep in two teams counts in both).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate

from accounts.models import Membership
from leads.models import Activity, ActivityKind, Lead, LeadStage
from pipeline.models import (
    OPEN_STAGES,
    Assignment,
    CallOutcome,
    Opportunity,
    OpportunityStatus,
    StageTransition,
    TeamMember,
)
from pipeline.routing import SELLER_ROLES
from reports.formatting import rate
from reports.period import ReportQuery

NOT_WORKED_LIMIT = 25  # rows listed; the count covers them all


def _lead_filters(query: ReportQuery, prefix: str) -> Q:
    """Source/campaign filters only: who gets credit is decided by the rep columns."""
    return replace(query, rep_id=None, team_id=None, owner_ids=None).lead_q(prefix)


def _in_period(query: ReportQuery, name: str) -> Q:
    return Q(**{f"{name}__gte": query.start_at, f"{name}__lt": query.end_at})


def visible_reps(*, organization_id: int, query: ReportQuery) -> list[Membership]:
    """Sellers of the organization the query covers: the rep scope, the team or rep filter.

    Memberships are not tenant-scoped rows: the organization filter is explicit."""
    reps = Membership.objects.filter(
        organization_id=organization_id, is_active=True, role__in=SELLER_ROLES
    )
    if query.owner_ids is not None:
        reps = reps.filter(pk__in=sorted(query.owner_ids))
    if query.rep_id:
        reps = reps.filter(pk=query.rep_id)
    if query.team_id:
        reps = reps.filter(team_seats__team_id=query.team_id)
    return list(reps.select_related("user").order_by("user__full_name", "user__email", "pk"))


@dataclass
class RepRow:
    membership_id: int
    name: str
    assigned: int = 0
    accepted: int = 0
    qualified: int = 0
    won: int = 0
    # Won amounts per currency: amounts in different currencies are never added up.
    won_amounts: dict[str, Decimal] = field(default_factory=dict)
    sla_met: int = 0
    sla_missed: int = 0
    sla_pending: int = 0
    open_leads: int = 0
    capacity: int | None = None  # None: no team seat, no capacity set
    is_away: bool = False
    not_worked: int = 0
    # Per lead reached in the period: the calls logged before its first connected one.
    connect_attempts: list[int] = field(default_factory=list)

    @property
    def connected_leads(self) -> int:
        return len(self.connect_attempts)

    @property
    def attempts_avg(self) -> float | None:
        n = len(self.connect_attempts)
        return sum(self.connect_attempts) / n if n else None

    @property
    def attempts_median(self) -> float | None:
        return float(statistics.median(self.connect_attempts)) if self.connect_attempts else None

    @property
    def won_amount(self) -> Decimal | None:
        """The won amount when the deals share one currency (else None: see
        won_amounts); zero without any won deal."""
        if len(self.won_amounts) > 1:
            return None
        return next(iter(self.won_amounts.values()), Decimal(0))

    @property
    def won_amount_text(self) -> str:
        """ "48000.00 EUR; 1000.00 USD": each currency's amount, by currency code."""
        items = sorted(self.won_amounts.items())
        return "; ".join(f"{amount:.2f} {currency}" for currency, amount in items)

    @property
    def sla_compliance(self) -> float | None:
        return rate(self.sla_met, self.sla_met + self.sla_missed)

    @property
    def accept_rate(self) -> float | None:
        return rate(self.accepted, self.assigned)

    @property
    def load(self) -> float | None:
        return rate(self.open_leads, self.capacity or 0)

    @property
    def free_capacity(self) -> int:
        if self.capacity is None or self.is_away:
            return 0
        return max(self.capacity - self.open_leads, 0)

    def add(self, other: RepRow) -> None:
        for name in (
            "assigned", "accepted", "qualified", "won", "sla_met",
            "sla_missed", "sla_pending", "open_leads", "not_worked",
        ):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.connect_attempts = self.connect_attempts + other.connect_attempts
        for currency, amount in other.won_amounts.items():
            self.won_amounts[currency] = self.won_amounts.get(currency, Decimal(0)) + amount
        if other.capacity is not None:
            self.capacity = (self.capacity or 0) + other.capacity


@dataclass
class DayFlow:
    day: dt.date
    arrivals: int = 0
    accepted: int = 0


@dataclass
class Capacity:
    waiting: int  # MQLs not yet accepted (assigned or not)
    unassigned: int
    free_capacity: int  # seats not away: capacity − open leads, summed
    arrivals: int  # moves into MQL in the period
    accepted: int  # moves into SAL in the period
    days: int
    flow: list[DayFlow] = field(default_factory=list)

    @property
    def arrivals_per_day(self) -> float:
        return self.arrivals / self.days

    @property
    def accepted_per_day(self) -> float:
        return self.accepted / self.days

    @property
    def net_per_day(self) -> float:
        return self.arrivals_per_day - self.accepted_per_day

    @property
    def bubble(self) -> bool:
        """The queue grows: more MQLs arrive than sales accepts."""
        return self.arrivals > self.accepted

    @property
    def over_capacity(self) -> bool:
        """More MQLs wait than the reps have room for."""
        return self.waiting > self.free_capacity

    @property
    def days_to_clear(self) -> float | None:
        return rate(self.waiting, self.accepted_per_day)


@dataclass
class SalesDashboard:
    reps: list[RepRow]
    teams: list[tuple[str, RepRow]]
    totals: RepRow
    capacity: Capacity
    not_worked: list[Assignment]
    not_worked_count: int


def _sla_state(now: dt.datetime) -> Case:
    """met / missed / pending / none of one assignment's first-touch and accept deadlines."""
    missed = Q(breached_at__isnull=False)
    done = Q()
    for due, at in (("first_touch_due_at", "first_touched_at"), ("accept_due_at", "accepted_at")):
        missed |= Q(**{f"{at}__gt": F(due)}) | Q(**{f"{at}__isnull": True, f"{due}__lt": now})
        done &= Q(**{f"{due}__isnull": True}) | Q(**{f"{at}__isnull": False})
    return Case(
        # No deadline at all (no SLA policy applied): not counted either way.
        When(first_touch_due_at__isnull=True, accept_due_at__isnull=True, then=Value("none")),
        When(missed, then=Value("missed")),
        When(done, then=Value("met")),
        default=Value("pending"),
        output_field=CharField(),
    )


def _assignment_counts(query: ReportQuery, rep_ids: list[int], now: dt.datetime):
    rows = (
        Assignment.objects.filter(_lead_filters(query, "lead__"), membership_id__in=rep_ids)
        .filter(_in_period(query, "assigned_at") | _in_period(query, "accepted_at"))
        .annotate(sla=_sla_state(now))
        .order_by()
        .values("membership_id")
        .annotate(
            assigned=Count("pk", filter=_in_period(query, "assigned_at")),
            accepted=Count("pk", filter=_in_period(query, "accepted_at")),
            **{
                f"sla_{s}": Count("pk", filter=_in_period(query, "assigned_at") & Q(sla=s))
                for s in ("met", "missed", "pending")
            },
        )
    )
    return {r.pop("membership_id"): r for r in rows}


def _qualified_counts(query: ReportQuery, rep_ids: list[int]) -> dict[int, int]:
    rows = (
        StageTransition.objects.filter(
            _lead_filters(query, "lead__"), _in_period(query, "occurred_at"), to_stage=LeadStage.SQL
        )
        .annotate(rep=Coalesce("actor_id", "lead__owner_id"))
        .filter(rep__in=rep_ids)
        .order_by()
        .values("rep")
        .annotate(n=Count("pk"))
    )
    return {r["rep"]: r["n"] for r in rows}


def _won_counts(query: ReportQuery, rep_ids: list[int]) -> dict[int, dict]:
    rows = (
        Opportunity.objects.filter(
            _lead_filters(query, "lead__"),
            _in_period(query, "closed_at"),
            status=OpportunityStatus.WON,
        )
        .annotate(rep=Coalesce("owner_id", "lead__owner_id"))
        .filter(rep__in=rep_ids)
        .order_by()
        .values("rep", "currency")
        .annotate(n=Count("pk"), amount=Sum("amount"))
    )
    won: dict[int, dict] = {}
    for r in rows:
        rep = won.setdefault(r["rep"], {"n": 0, "amounts": {}})
        rep["n"] += r["n"]
        currency = (r["currency"] or "").upper()
        rep["amounts"][currency] = rep["amounts"].get(currency, Decimal(0)) + (r["amount"] or 0)
    return won


def _open_counts(query: ReportQuery, rep_ids: list[int]) -> dict[int, dict]:
    """Open leads per owner now, and those accepted but never touched."""
    not_worked = Q(
        assignments__is_current=True,
        assignments__accepted_at__isnull=False,
        assignments__first_touched_at__isnull=True,
    )
    rows = (
        Lead.objects.filter(_lead_filters(query, ""), owner_id__in=rep_ids, stage__in=OPEN_STAGES)
        .order_by()
        .values("owner_id")
        .annotate(n=Count("pk", distinct=True), not_worked=Count("pk", filter=not_worked))
    )
    return {r["owner_id"]: r for r in rows}


def _seats(rep_ids: list[int]) -> tuple[dict[int, dict], dict[str, list[int]]]:
    """Capacity per rep (their largest seat: capacity is per rep) and team members."""
    seats = list(
        TeamMember.objects.filter(membership_id__in=rep_ids)
        .order_by("team__name", "pk")
        .values("membership_id", "team__name", "capacity", "is_away")
    )
    per_rep: dict[int, dict] = {}
    teams: dict[str, list[int]] = defaultdict(list)
    for seat in seats:
        rep = per_rep.setdefault(seat["membership_id"], {"capacity": 0, "is_away": True})
        rep["capacity"] = max(rep["capacity"], seat["capacity"])
        rep["is_away"] = rep["is_away"] and seat["is_away"]  # away from every seat
        teams[seat["team__name"]].append(seat["membership_id"])
    return per_rep, teams


def _capacity(query: ReportQuery, rows: list[RepRow]) -> Capacity:
    waiting = Lead.objects.filter(query.lead_q(), stage=LeadStage.MQL).aggregate(
        waiting=Count("pk"), unassigned=Count("pk", filter=Q(owner__isnull=True))
    )
    flow_rows = (
        StageTransition.objects.filter(
            query.lead_q("lead__"),
            _in_period(query, "occurred_at"),
            to_stage__in=[LeadStage.MQL, LeadStage.SAL],
        )
        .annotate(day=TruncDate("occurred_at", tzinfo=query.tz))
        .order_by()
        .values("day")
        .annotate(
            arrivals=Count("pk", filter=Q(to_stage=LeadStage.MQL)),
            accepted=Count("pk", filter=Q(to_stage=LeadStage.SAL)),
        )
    )
    by_day = {r["day"]: r for r in flow_rows}
    flow = []
    for offset in range(query.days):
        day = query.start + dt.timedelta(days=offset)
        r = by_day.get(day, {})
        flow.append(DayFlow(day, r.get("arrivals", 0), r.get("accepted", 0)))
    return Capacity(
        waiting=waiting["waiting"],
        unassigned=waiting["unassigned"],
        free_capacity=sum(r.free_capacity for r in rows),
        arrivals=sum(d.arrivals for d in flow),
        accepted=sum(d.accepted for d in flow),
        days=query.days,
        flow=flow,
    )


def _connect_attempts(query: ReportQuery, rep_ids: list[int]) -> dict[int, list[int]]:
    """Per owner, for each lead first reached (a call with outcome "connected") in the
    period: how many calls were logged before that one. One query: the leads come
    from the period's connected calls, the counts from correlated subqueries."""
    calls = Activity.objects.filter(kind=ActivityKind.CALL)
    connected = calls.filter(properties__outcome=CallOutcome.CONNECTED)
    first_ever = connected.filter(lead=OuterRef("pk")).order_by("occurred_at", "pk")
    reached = connected.filter(_in_period(query, "occurred_at")).order_by().values("lead_id")
    before = (
        calls.filter(lead=OuterRef("pk"), occurred_at__lt=OuterRef("first_connect"))
        .order_by()
        .values("lead")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = (
        Lead.objects.filter(_lead_filters(query, ""), owner_id__in=rep_ids, pk__in=reached)
        .annotate(first_connect=Subquery(first_ever.values("occurred_at")[:1]))
        .filter(_in_period(query, "first_connect"))
        .annotate(attempts=Coalesce(Subquery(before), 0))
        .order_by()
        .values_list("owner_id", "attempts")
    )
    out: dict[int, list[int]] = defaultdict(list)
    for owner_id, attempts in rows:
        out[owner_id].append(attempts)
    return out


def _not_worked(query: ReportQuery, rep_ids: list[int]):
    rows = (
        Assignment.objects.filter(
            _lead_filters(query, "lead__"),
            membership_id__in=rep_ids,
            is_current=True,
            accepted_at__isnull=False,
            first_touched_at__isnull=True,
            lead__stage__in=OPEN_STAGES,
        )
        .select_related("lead", "membership__user")
        .order_by("accepted_at", "pk")
    )
    return list(rows[:NOT_WORKED_LIMIT])


def sales_dashboard(
    *, organization_id: int, query: ReportQuery, now: dt.datetime
) -> SalesDashboard:
    """Per-rep and per-team activity, SLA, load, calls before a first connect and the
    capacity picture (10 queries)."""
    reps = visible_reps(organization_id=organization_id, query=query)
    ids = [r.pk for r in reps]
    assignments = _assignment_counts(query, ids, now)
    qualified = _qualified_counts(query, ids)
    won = _won_counts(query, ids)
    open_ = _open_counts(query, ids)
    seats, team_members = _seats(ids)
    attempts = _connect_attempts(query, ids)
    rows: list[RepRow] = []
    for rep in reps:
        a = assignments.get(rep.pk, {})
        w = won.get(rep.pk, {})
        o = open_.get(rep.pk, {})
        seat = seats.get(rep.pk)
        rows.append(
            RepRow(
                membership_id=rep.pk,
                name=rep.user.display_name,
                assigned=a.get("assigned", 0),
                accepted=a.get("accepted", 0),
                sla_met=a.get("sla_met", 0),
                sla_missed=a.get("sla_missed", 0),
                sla_pending=a.get("sla_pending", 0),
                qualified=qualified.get(rep.pk, 0),
                won=w.get("n", 0),
                won_amounts=dict(w.get("amounts") or {}),
                open_leads=o.get("n", 0),
                not_worked=o.get("not_worked", 0),
                capacity=seat["capacity"] if seat else None,
                is_away=bool(seat and seat["is_away"]),
                connect_attempts=attempts.get(rep.pk, []),
            )
        )
    by_id = {r.membership_id: r for r in rows}
    teams = []
    for name, members in team_members.items():
        team = RepRow(membership_id=0, name=name)
        for pk in members:
            team.add(by_id[pk])
        teams.append((name, team))
    totals = RepRow(membership_id=0, name="All reps")
    for row in rows:
        totals.add(row)
    capacity = _capacity(query, rows)
    not_worked = _not_worked(query, ids)
    return SalesDashboard(
        reps=rows,
        teams=teams,
        totals=totals,
        capacity=capacity,
        not_worked=not_worked,
        not_worked_count=totals.not_worked,
    )
