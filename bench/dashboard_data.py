"""Data for bench/dashboard.py, generated inside PostgreSQL: campaigns, leads
arriving over two years by channel and campaign, their stage history (about one
transition per lead: half never qualify, a few go all the way to won or lost),
won opportunities, about five activities per lead, and for the funnel &
velocity page: an assignment to a rep for every lead that reached MQL (its
first touch, SLA breach, a few SLA reassignments) and 1% of leads merged away.

Deterministic (hashint8 of the row number), PostgreSQL only. Reuses the column
filler of bench/rescore_data.py.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from bench.rescore_data import _hash, _insert, add_activities, id_range
from leads.models import Campaign, Channel, Lead

HISTORY_DAYS = 730
CAMPAIGNS = [
    (Channel.PAID_SEARCH, "Search brand", 24000),
    (Channel.PAID_SEARCH, "Search generic", 48000),
    (Channel.PAID_SOCIAL, "LinkedIn lead gen", 36000),
    (Channel.PAID_SOCIAL, "Meta retargeting", 12000),
    (Channel.WEBINAR, "Monthly webinar", 9000),
    (Channel.EVENT, "Trade fair", 60000),
    (Channel.EMAIL, "Newsletter", 3000),
    (Channel.CONTENT, "Syndicated e-book", 15000),
    (Channel.PURCHASED_LIST, "Bought list", 20000),
    (Channel.PARTNER, "Reseller program", 10000),
]
FREE_SOURCES = [Channel.ORGANIC_SEARCH, Channel.DIRECT, Channel.REFERRAL]
# Furthest stage by share of 100: 50 stay new, 25 MQL, 10 SAL, 7 SQL, 4 opportunity, 4 decided.
DEPTH = "CASE WHEN {h} < 50 THEN 0 WHEN {h} < 75 THEN 1 WHEN {h} < 85 THEN 2 WHEN {h} < 92 THEN 3 WHEN {h} < 96 THEN 4 ELSE 5 END"  # noqa: E501


def add_campaigns(organization_id: int) -> list[int]:
    Campaign.objects.bulk_create(
        Campaign(organization_id=organization_id, name=name, channel=channel, cost=cost)
        for channel, name, cost in CAMPAIGNS
    )
    return list(
        Campaign.objects.filter(organization_id=organization_id)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def add_leads(
    *, organization_id: int, start: int, count: int, campaigns: list[int], now: datetime
) -> None:
    """Leads numbered start…; 70% come from a campaign (source = its channel)."""
    pick = _hash(21, 10)
    campaign_case = "CASE " + " ".join(
        f"WHEN {pick} = {i} THEN {pk}" for i, pk in enumerate(campaigns)
    ) + " END"  # fmt: skip
    source_case = "CASE " + " ".join(
        f"WHEN {pick} = {i} THEN '{channel.value}'" for i, (channel, _, _) in enumerate(CAMPAIGNS)
    ) + " END"  # fmt: skip
    free = "(ARRAY[" + ", ".join(f"'{c.value}'" for c in FREE_SOURCES) + "])"
    with_campaign = f"{_hash(22, 10)} < 7"
    _insert(
        Lead,
        start,
        count,
        {
            "organization": "%(org)s",
            "email": "'dash' || i || '@prospect.example'",
            "first_name": "'Lead'",
            "last_name": "'No. ' || i",
            "country": "'US'",
            "first_campaign": f"CASE WHEN {with_campaign} THEN {campaign_case} END",
            "first_source": (
                f"CASE WHEN {with_campaign} THEN {source_case}"
                f" ELSE {free}[1 + {_hash(23, len(FREE_SOURCES))}] END"
            ),
            "quality": f"CASE WHEN {_hash(24, 50)} = 0 THEN 'junk' ELSE 'ok' END",
            "created_at": f"%(now)s - make_interval(secs => {_hash(25, HISTORY_DAYS * 86400)})",
            "updated_at": "%(now)s",
        },
        {"org": organization_id, "now": now},
    )


def add_history(*, organization_id: int, leads: tuple[int, int], now: datetime) -> None:
    """Stage history of these leads, their stage, and an opportunity for each decided deal.

    History is written in time order, as an append-only log fills up in production
    (a period's moves sit together on disk, not one per page across the table)."""
    lo, hi = leads
    depth = DEPTH.format(h="(abs(hashint8(l.id * 31)) %% 100)")
    outcome = "CASE WHEN abs(hashint8(l.id * 37)) %% 2 = 0 THEN 'won' ELSE 'lost' END"
    steps = (
        "(VALUES (1, '', 'mql'), (2, 'mql', 'sal'), (3, 'sal', 'sql'),"
        " (4, 'sql', 'opportunity'), (5, 'opportunity', NULL)) AS v(k, prev, stage)"
    )
    # Each step a few hours to days after the last, never after `now`.
    at = "LEAST(l.created_at + make_interval(hours => v.k * (1 + abs(hashint8(l.id * 41)) %% 72)), %(now)s)"  # noqa: E501
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO pipeline_stagetransition
                (organization_id, lead_id, from_stage, to_stage, occurred_at, actor_id, rule,
                 reason_code, reason)
            SELECT l.organization_id, l.id, v.prev, COALESCE(v.stage, {outcome}), {at}, NULL,
                   'bench', '', ''
            FROM leads_lead l CROSS JOIN {steps}
            WHERE l.organization_id = %(org)s AND l.id BETWEEN %(lo)s AND %(hi)s
              AND v.k <= {depth}
            ORDER BY 5
            """,
            {"org": organization_id, "lo": lo, "hi": hi, "now": now},
        )
        cursor.execute(
            """
            UPDATE leads_lead l SET stage = t.to_stage, stage_changed_at = t.occurred_at
            FROM (SELECT DISTINCT ON (lead_id) lead_id, to_stage, occurred_at
                  FROM pipeline_stagetransition
                  WHERE organization_id = %(org)s AND lead_id BETWEEN %(lo)s AND %(hi)s
                  ORDER BY lead_id, occurred_at DESC, id DESC) t
            WHERE l.id = t.lead_id
            """,
            {"org": organization_id, "lo": lo, "hi": hi},
        )
        cursor.execute(
            """
            INSERT INTO pipeline_opportunity
                (organization_id, lead_id, name, amount, currency, probability, next_step,
                 status, closed_at, close_reason, created_at, updated_at)
            SELECT organization_id, id, 'Deal ' || id, 2000 + (abs(hashint8(id * 43)) %% 40) * 500,
                   'USD', 100, '', stage, stage_changed_at, '', stage_changed_at, stage_changed_at
            FROM leads_lead
            WHERE organization_id = %(org)s AND id BETWEEN %(lo)s AND %(hi)s
              AND stage IN ('won', 'lost')
            """,
            {"org": organization_id, "lo": lo, "hi": hi},
        )


def add_reps(organization_id: int, *, reps: int = 8) -> list[tuple[int, int | None]]:
    """Sales reps (membership, team): two teams of three and two reps in no team."""
    from accounts.models import Membership, Role, User
    from pipeline.models import Team, TeamMember

    teams = [Team.objects.create(organization_id=organization_id, name=f"Team {n}") for n in "AB"]
    out = []
    for n in range(reps):
        user = User.objects.create(
            email=f"rep{n}.{organization_id}@bench.example", full_name=f"Rep {n}"
        )
        member = Membership.objects.create(
            organization_id=organization_id, user=user, role=Role.SALES_REP
        )
        team = teams[n % 2] if n < 6 else None
        if team:
            TeamMember.objects.create(organization_id=organization_id, team=team, membership=member)
        out.append((member.pk, team.pk if team else None))
    return out


def add_assignments(
    *, organization_id: int, leads: tuple[int, int], reps: list[tuple[int, int | None]], now
) -> None:
    """Each lead that reached MQL is assigned minutes to hours later (written in time
    order, like the history); 90% are touched,
    15% breach their SLA, 5% are SLA reassignments. Then 1% of the leads are merged
    into their predecessor (their history stays, the reports leave it out)."""
    lo, hi = leads
    members = "ARRAY[" + ", ".join(str(m) for m, _ in reps) + "]"
    teams = "ARRAY[" + ", ".join(str(t) if t else "NULL" for _, t in reps) + "]::integer[]"
    pick = f"1 + abs(hashint8(t.lead_id * 53)) %% {len(reps)}"
    h = "abs(hashint8(t.lead_id * 59)) %% 100"
    assigned = "LEAST(t.occurred_at + make_interval(mins => abs(hashint8(t.lead_id * 61)) %% 180), %(now)s)"  # noqa: E501
    touched = (
        f"LEAST({assigned} + make_interval(mins => abs(hashint8(t.lead_id * 67)) %% 240), %(now)s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO pipeline_assignment
                (organization_id, lead_id, membership_id, team_id, rule_id, method, reason,
                 assigned_at, assigned_by_id, first_touch_due_at, accept_due_at, first_touched_at,
                 accepted_at, breached_at, escalated_at, is_current)
            SELECT t.organization_id, t.lead_id, ({members})[{pick}], ({teams})[{pick}], NULL,
                   CASE WHEN {h} < 5 THEN 'sla_reassign' ELSE 'rule' END, '',
                   {assigned}, NULL, {assigned} + interval '1 hour', NULL,
                   CASE WHEN {h} < 90 THEN {touched} END, NULL,
                   CASE WHEN {h} >= 85 THEN {assigned} + interval '1 hour' END, NULL, true
            FROM pipeline_stagetransition t
            WHERE t.organization_id = %(org)s AND t.lead_id BETWEEN %(lo)s AND %(hi)s
              AND t.to_stage = 'mql'
            ORDER BY 8
            """,
            {"org": organization_id, "lo": lo, "hi": hi, "now": now},
        )
        cursor.execute(
            """
            UPDATE leads_lead SET merged_into_id = id - 1
            WHERE organization_id = %(org)s AND id BETWEEN %(lo)s AND %(hi)s
              AND abs(hashint8(id * 71)) %% 100 = 0
            """,
            {"org": organization_id, "lo": lo + 1, "hi": hi},
        )


def grow(
    *, organization_id: int, leads: int, activities_per_lead: int, campaigns, now, reps=None
) -> None:
    n_leads = Lead.objects.count()
    from leads.models import Activity

    n_acts = Activity.objects.count()
    add_leads(organization_id=organization_id, start=n_leads + 1, count=leads,
              campaigns=campaigns, now=now)  # fmt: skip
    hi = id_range(Lead, organization_id)[1]
    new = (hi - leads + 1, hi)
    add_history(organization_id=organization_id, leads=new, now=now)
    add_activities(organization_id=organization_id, start=n_acts + 1,
                   count=leads * activities_per_lead, leads=new, now=now)  # fmt: skip
    if reps:
        add_assignments(organization_id=organization_id, leads=new, reps=reps, now=now)
