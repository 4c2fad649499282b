"""Data for bench/rep_queue.py: an organization's sales team and a pipeline of leads
generated inside PostgreSQL (INSERT … SELECT), with the rows the pipeline
services would have written for them — current and earlier assignments, stage
history, BANT notes and opportunities — plus activities (bench/rescore_data.py).

Leads are numbered per organization (i = 1, 2, …); every value is a hash of the
number, so two runs build the same tenant. The first QUEUE_SIZE leads are the
measured rep's open queue; later leads never go to them in an open stage, so the
queue stays the same size however large the tenant grows. PostgreSQL only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model

from accounts.models import Membership, Organization, Role, User
from bench.rescore_data import (
    COUNTRIES,
    TITLES,
    _array,
    _hash,
    _insert,
    _pick,
    add_activities,
    add_companies,
    id_range,
)
from leads.models import Activity, Company, Lead, LeadStage
from pipeline.models import (
    OPEN_STAGES,
    Assignment,
    FollowUp,
    Opportunity,
    Qualification,
    StageTransition,
    Team,
    TeamMember,
)

QUEUE_SIZE = 40  # the measured rep's open leads, at every size

# Stage of the other leads, by share of 1000: most never became MQLs; most that
# did are closed or back in nurture; a few percent are being worked right now.
STAGE_SHARES = [
    (LeadStage.NEW, 700), (LeadStage.MQL, 8), (LeadStage.SAL, 5), (LeadStage.SQL, 4),
    (LeadStage.OPPORTUNITY, 3), (LeadStage.WON, 30), (LeadStage.LOST, 50),
    (LeadStage.RECYCLED, 160), (LeadStage.DISQUALIFIED, 40),
]  # fmt: skip
assert sum(share for _, share in STAGE_SHARES) == 1000

# How a lead reached its stage: (from, to, rule) moves, as the services record them.
_MQL = [(LeadStage.NEW, LeadStage.MQL, "score")]
_SAL = [*_MQL, (LeadStage.MQL, LeadStage.SAL, "accept")]
_SQL = [*_SAL, (LeadStage.SAL, LeadStage.SQL, "bant")]
_OPP = [*_SQL, (LeadStage.SQL, LeadStage.OPPORTUNITY, "opportunity")]
PATHS: dict[str, list[tuple[str, str, str]]] = {
    LeadStage.MQL: _MQL,
    LeadStage.SAL: _SAL,
    LeadStage.SQL: _SQL,
    LeadStage.OPPORTUNITY: _OPP,
    LeadStage.WON: [*_OPP, (LeadStage.OPPORTUNITY, LeadStage.WON, "close")],
    LeadStage.LOST: [*_OPP, (LeadStage.OPPORTUNITY, LeadStage.LOST, "close")],
    LeadStage.RECYCLED: [*_MQL, (LeadStage.MQL, LeadStage.RECYCLED, "reject")],
    LeadStage.DISQUALIFIED: [(LeadStage.NEW, LeadStage.DISQUALIFIED, "disqualify")],
}
REASONS = {
    LeadStage.LOST: ("", "Went with a competitor"),
    LeadStage.RECYCLED: ("not_now", "Not now"),
    LeadStage.DISQUALIFIED: ("", "Student, not a buyer"),
}
DEAL_STAGES = (LeadStage.OPPORTUNITY, LeadStage.WON, LeadStage.LOST)
QUALIFIED_STAGES = (LeadStage.SQL, *DEAL_STAGES)


@dataclass
class SalesTeam:
    organization: Organization
    rep: Membership  # the one whose queue is measured
    admin: Membership
    reps: list[Membership]  # every sales rep, `rep` first

    @property
    def others(self) -> list[int]:
        return [m.pk for m in self.reps[1:]]


def make_sales_team(*, slug: str, reps: int, teams: int) -> SalesTeam:
    """An organization, an admin, `reps` sales reps spread over `teams` teams."""
    org = Organization.objects.create(name=f"Bench {slug}", slug=slug)

    def member(name: str, role: str) -> Membership:
        user = User(email=f"{name}@{slug}.example", full_name=name.replace("-", " ").title())
        user.set_unusable_password()
        user.save()
        return Membership.objects.create(organization=org, user=user, role=role)

    admin = member("admin", Role.ADMIN)
    sellers = [member(f"rep-{n:02d}", Role.SALES_REP) for n in range(1, reps + 1)]
    team_rows = [
        Team.objects.create(organization=org, name=f"Team {t + 1}", is_default=t == 0)
        for t in range(teams)
    ]
    TeamMember.objects.bulk_create(
        TeamMember(organization=org, team=team_rows[n % teams], membership=m, capacity=QUEUE_SIZE)
        for n, m in enumerate(sellers)
    )
    return SalesTeam(org, sellers[0], admin, sellers)


def _stage_sql() -> str:
    """The stage of lead i: the measured rep's queue first, then by STAGE_SHARES."""
    bucket, low, whens = _hash(21, 1000), 0, []
    for stage, share in STAGE_SHARES:
        low += share
        whens.append(f"WHEN {bucket} < {low} THEN '{stage}'")
    queue = f"({_array(list(OPEN_STAGES))})[1 + i %% {len(OPEN_STAGES)}]"
    return f"(CASE WHEN i <= {QUEUE_SIZE} THEN {queue} " + " ".join(whens) + " END)"


def _owner_sql(stage: str, team: SalesTeam) -> str:
    """Open leads belong to the other reps (one MQL in ten waits unassigned); closed
    deals to any rep, the measured one included; the rest to nobody."""
    others, everyone = team.others, [m.pk for m in team.reps]
    open_list = ", ".join(f"'{s}'" for s in OPEN_STAGES)
    return (
        f"(CASE WHEN i <= {QUEUE_SIZE} THEN {team.rep.pk}"
        f" WHEN {stage} = '{LeadStage.MQL}' AND {_hash(22, 10)} = 0 THEN NULL"
        f" WHEN {stage} IN ({open_list})"
        f" THEN (ARRAY{others}::bigint[])[1 + {_hash(23, len(others))}]"
        f" WHEN {stage} IN ('{LeadStage.WON}', '{LeadStage.LOST}')"
        f" THEN (ARRAY{everyone}::bigint[])[1 + {_hash(23, len(everyone))}] END)"
    )


def _ago(salt: int, seconds: int, base: str = "%(now)s") -> str:
    return f"({base} - make_interval(secs => {_hash(salt, seconds)}))"


def add_leads(
    *, team: SalesTeam, start: int, count: int, companies: tuple[int, int], now: datetime
) -> None:
    """Scored leads numbered start…, in every stage, owned as _owner_sql says."""
    stage, c_lo, c_hi = _stage_sql(), *companies
    owner = _owner_sql(stage, team)
    # The queue's leads arrived in the last 10 hours (some SLA clocks run, some are
    # overdue); the others changed stage in the last 90 days.
    changed = (
        f"(CASE WHEN i <= {QUEUE_SIZE} THEN {_ago(26, 10 * 3600)}"
        f" WHEN {stage} <> '{LeadStage.NEW}' THEN {_ago(25, 90 * 86400)} END)"
    )
    score = _hash(28, 100)
    _insert(
        Lead,
        start,
        count,
        {
            "organization": "%(org)s",
            # What the queue row shows: name, title, company, email, phone.
            "first_name": _pick(["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken"], 2),
            "last_name": "'Buyer ' || i",
            "email": "'q' || i || '@lead' || (i %% 997) || '.example'",
            "phone": "'+1555' || lpad((i %% 10000000)::text, 7, '0')",
            "title": _pick(TITLES, 3),
            "company": f"CASE WHEN {_hash(6, 10)} < 6 THEN {c_lo} + {_hash(7, c_hi - c_lo + 1)}"
            " END",
            "company_name": "'Account ' || (i %% 5000)",
            "country": _pick(COUNTRIES, 4),
            "first_source": _pick(["organic_search", "paid_search", "email", "referral"], 8),
            "owner": owner,
            "created_at": _ago(24, 640 * 86400, "%(now)s - interval '91 days'"),
            "updated_at": "%(now)s",
            "last_activity_at": _ago(29, 30 * 86400),
            "score": score,
            "fit_score": f"({score} / 2)",
            "engagement_score": f"({score} - {score} / 2)",
            "grade": _pick(["A", "B", "C", "D"], 30),
            "band": f"CASE WHEN {score} >= 70 THEN 'hot' WHEN {score} >= 40 THEN 'warm'"
            " ELSE 'cold' END",
            "scored_at": "%(now)s",
            "mql_eligible": f"{score} >= 60",
            "stage": stage,
            "stage_changed_at": changed,
            "assigned_at": f"CASE WHEN {owner} IS NOT NULL THEN {changed} END",
            "mql_source": f"CASE WHEN {stage} IN ('{LeadStage.NEW}', '{LeadStage.DISQUALIFIED}')"
            " THEN '' ELSE 'score' END",
        },
        {"org": team.organization.pk, "now": now},
    )


def _insert_from(
    model: type[Model], values: dict[str, str], source: str, params: dict[str, Any]
) -> int:
    """INSERT INTO model (every column) SELECT values FROM source; returns the row count.

    Naming every column makes a model change (a new NOT NULL field) fail here
    loudly instead of loading rows the services could never have written."""
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    if set(values) != set(columns):
        raise RuntimeError(f"bench: {model.__name__} columns changed: {sorted(columns)}")
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    select = ", ".join(values[c] for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {model._meta.db_table} ({quoted}) SELECT {select} {source}", params
        )
        return cursor.rowcount


def _leads_in(lead_range: tuple[int, int], where: str = "TRUE", join: str = "") -> str:
    return (
        f"FROM {Lead._meta.db_table} l {join} WHERE l.organization_id = %(org)s"
        f" AND l.id BETWEEN {lead_range[0]} AND {lead_range[1]} AND ({where})"
    )


def add_assignments(*, team: SalesTeam, leads: tuple[int, int], now: datetime) -> int:
    """Each owned lead's current assignment (clocks as the queue shows them), and an
    earlier, ended one for every recycled lead and one owned lead in five."""
    mql, seats = f"l.stage = '{LeadStage.MQL}'", TeamMember._meta.db_table
    team_of = f"(SELECT s.team_id FROM {seats} s WHERE s.membership_id = {{who}} LIMIT 1)"
    common = {
        "organization_id": "l.organization_id",
        "lead_id": "l.id",
        "rule_id": "NULL",
        "assigned_by_id": "NULL",
        "escalated_at": "NULL",
    }
    current = _insert_from(
        Assignment,
        {
            **common,
            "membership_id": "l.owner_id",
            "team_id": team_of.format(who="l.owner_id"),
            "method": "'round_robin'",
            "reason": "'Round robin: next rep under capacity'",
            "assigned_at": "l.assigned_at",
            "first_touch_due_at": "l.assigned_at + interval '1 hour'",
            "accept_due_at": f"CASE WHEN {mql} THEN l.assigned_at + interval '4 hours' END",
            "first_touched_at": f"CASE WHEN NOT {mql} OR l.id %% 3 = 0"
            " THEN l.assigned_at + interval '20 minutes' END",
            "accepted_at": f"CASE WHEN NOT {mql} THEN l.assigned_at + interval '30 minutes' END",
            "breached_at": f"CASE WHEN {mql} AND l.assigned_at < %(now)s - interval '4 hours'"
            " THEN l.assigned_at + interval '4 hours' END",
            # 80 % of the nearest window (first touch, 1 hour); warned once it passed.
            "at_risk_at": "l.assigned_at + interval '48 minutes'",
            "at_risk_notified_at": "CASE WHEN l.assigned_at + interval '48 minutes' < %(now)s"
            " THEN l.assigned_at + interval '48 minutes' END",
            "is_current": "TRUE",
        },
        _leads_in(leads, "l.owner_id IS NOT NULL"),
        {"org": team.organization.pk, "now": now},
    )
    everyone = [m.pk for m in team.reps]
    earlier_rep = f"(ARRAY{everyone}::bigint[])[1 + (l.id %% {len(everyone)})]"
    earlier = _insert_from(
        Assignment,
        {
            **common,
            "membership_id": earlier_rep,
            "team_id": team_of.format(who=earlier_rep),
            "method": "'least_loaded'",
            "reason": "'Least loaded in the team'",
            "assigned_at": "COALESCE(l.stage_changed_at, l.created_at) - interval '3 days'",
            "first_touch_due_at": "NULL",
            "accept_due_at": "NULL",
            "first_touched_at": "NULL",
            "accepted_at": "NULL",
            "breached_at": "NULL",
            "at_risk_at": "NULL",
            "at_risk_notified_at": "NULL",
            "is_current": "FALSE",
        },
        _leads_in(
            leads, f"l.stage = '{LeadStage.RECYCLED}' OR (l.owner_id IS NOT NULL AND l.id %% 5 = 0)"
        ),
        {"org": team.organization.pk},
    )
    return current + earlier


def add_history(*, team: SalesTeam, leads: tuple[int, int]) -> int:
    """The StageTransition rows of each lead's path to its stage, two days apart."""
    rows = []
    for stage, path in PATHS.items():
        code, text = REASONS.get(stage, ("", ""))
        for step, (src, dst, rule) in enumerate(path, start=1):
            last = step == len(path)
            rows.append(
                f"('{stage}', {len(path) - step}, '{src}', '{dst}', '{rule}',"
                f" '{code if last else ''}', '{text if last else ''}')"
            )
    moves = (
        "(VALUES " + ", ".join(rows) + ") AS p(stage, back, from_stage, to_stage, rule, code, why)"
    )
    return _insert_from(
        StageTransition,
        {
            "organization_id": "l.organization_id",
            "lead_id": "l.id",
            "from_stage": "p.from_stage",
            "to_stage": "p.to_stage",
            "occurred_at": "l.stage_changed_at - p.back * interval '2 days'",
            "actor_id": "CASE WHEN p.rule <> 'score' THEN l.owner_id END",
            "rule": "p.rule",
            "reason_code": "p.code",
            "reason": "p.why",
        },
        _leads_in(leads, join=f"JOIN {moves} ON p.stage = l.stage"),
        {"org": team.organization.pk},
    )


def add_deals(*, team: SalesTeam, leads: tuple[int, int]) -> int:
    """BANT notes for every lead past SAL, and an opportunity for every deal stage."""
    params = {"org": team.organization.pk}
    stages = ", ".join(f"'{s}'" for s in QUALIFIED_STAGES)
    written = _insert_from(
        Qualification,
        {
            "organization_id": "l.organization_id",
            "lead_id": "l.id",
            "budget_amount": "5000 + (l.id %% 50) * 1000",
            "budget_currency": "'USD'",
            "budget_confirmed": "l.id %% 2 = 0",
            "authority_role": "'Head of Marketing'",
            "decision_maker": "TRUE",
            "need": "'Leads sit in a spreadsheet for days before anyone calls them.'",
            "timing_window": "'1_3m'",
            "timing_date": "NULL",
            "updated_by_id": "l.owner_id",
            "updated_at": "l.stage_changed_at",
        },
        _leads_in(leads, f"l.stage IN ({stages})"),
        params,
    )
    deals = ", ".join(f"'{s}'" for s in DEAL_STAGES)
    closed = f"l.stage <> '{LeadStage.OPPORTUNITY}'"
    return written + _insert_from(
        Opportunity,
        {
            "organization_id": "l.organization_id",
            "lead_id": "l.id",
            "name": "l.company_name || ' deal'",
            "amount": "2000 + (l.id * 7919) %% 50000",
            "currency": "'USD'",
            "expected_close_date": "(l.stage_changed_at + interval '45 days')::date",
            "probability": f"CASE l.stage WHEN '{LeadStage.WON}' THEN 100"
            f" WHEN '{LeadStage.LOST}' THEN 0 ELSE 40 END",
            "next_step": "'Send the proposal'",
            "status": f"CASE WHEN {closed} THEN l.stage ELSE 'open' END",
            "closed_at": f"CASE WHEN {closed} THEN l.stage_changed_at END",
            "close_reason": f"CASE WHEN l.stage = '{LeadStage.LOST}' THEN 'Went with a competitor'"
            " ELSE '' END",
            "owner_id": "l.owner_id",
            # No board column chosen: the board shows it in its status's first stage.
            "stage_id": "NULL",
            "created_at": "l.stage_changed_at",
            "updated_at": "l.stage_changed_at",
        },
        _leads_in(leads, f"l.stage IN ({deals})"),
        params,
    )


def add_follow_ups(*, team: SalesTeam, leads: tuple[int, int], now: datetime) -> int:
    """A task on every owned lead: one in three overdue (the lead is stalled), one in
    three due tomorrow (its next step), one in three done (the queue's EXISTS skip it)."""
    return _insert_from(
        FollowUp,
        {
            "organization_id": "l.organization_id",
            "kind": "'call'",
            "title": "'Call back about the proposal'",
            "notes": "''",
            "due_at": "%(now)s + CASE l.id %% 3 WHEN 0 THEN interval '-1 day'"
            " ELSE interval '1 day' END",
            "lead_id": "l.id",
            "opportunity_id": "NULL",
            "assignee_id": "l.owner_id",
            "created_by_id": "l.owner_id",
            "created_at": "%(now)s - interval '2 days'",
            "updated_at": "%(now)s - interval '2 days'",
            "done_at": "CASE WHEN l.id %% 3 = 2 THEN %(now)s - interval '1 day' END",
            "reminded_at": "NULL",
        },
        _leads_in(leads, "l.owner_id IS NOT NULL"),
        {"org": team.organization.pk, "now": now},
    )


def grow(*, team: SalesTeam, leads: int, activities_per_lead: int, now: datetime) -> dict:
    """Add `leads` leads (companies 1 per 10, activities, pipeline rows) to the team's org.

    Runs inside the organization's scope; returns the row counts written."""
    org_id = team.organization.pk
    start = Lead.objects.count() + 1
    add_companies(
        organization_id=org_id, start=Company.objects.count() + 1, count=leads // 10, now=now
    )
    add_leads(team=team, start=start, count=leads, companies=id_range(Company, org_id), now=now)
    hi = id_range(Lead, org_id)[1]
    batch = (hi - leads + 1, hi)
    add_activities(
        organization_id=org_id,
        start=Activity.objects.count() + 1,
        count=leads * activities_per_lead,
        leads=batch,
        now=now,
    )
    return {
        "assignments": add_assignments(team=team, leads=batch, now=now),
        "transitions": add_history(team=team, leads=batch),
        "deals": add_deals(team=team, leads=batch),
        "follow_ups": add_follow_ups(team=team, leads=batch, now=now),
    }
