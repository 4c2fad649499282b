"""seed_demo step: two teams with the demo reps, routing rules, then the demo
MQLs routed and worked through every stage with real transitions (accepted,
rejected, touched, qualified, opportunities won and lost, an SLA breach).

Runs after scoring's step, so the MQLs already exist. Idempotent: skipped
when the demo teams are already there."""

from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone

from accounts.models import Membership, Role
from leads.models import ActivityKind, Lead, LeadStage
from pipeline import services
from pipeline.errors import PipelineError
from pipeline.models import Assignment, RoutingMethod, RoutingRule, Team, TeamMember

EMEA = ["DE", "FR", "GB", "NL", "ES", "IT", "SE", "CH", "AT", "PL", "IE", "BE"]


def seed(org, stdout) -> None:
    if Team.objects.filter(name="EMEA").exists():
        stdout.write("  pipeline: demo teams already present")
        return
    members = {
        m.user.email: m
        for m in Membership.objects.filter(organization=org, is_active=True).select_related("user")
    }
    reps = [m for m in members.values() if m.role == Role.SALES_REP]
    admin = next((m for m in members.values() if m.role == Role.ADMIN), None)
    if not reps:
        stdout.write("  pipeline: no sales reps, skipped")
        return
    services.deal_stages_install(organization_id=org.pk)  # the board's columns
    emea = services.team_save(team=Team(organization=org, name="EMEA", team_lead=admin))
    rest = services.team_save(
        team=Team(organization=org, name="Rest of world", team_lead=admin, is_default=True)
    )
    for i, rep in enumerate(reps):
        services.team_member_save(
            member=TeamMember(
                organization=org, team=emea, membership=rep, capacity=80, weight=1 + i
            )
        )
        services.team_member_save(
            member=TeamMember(organization=org, team=rest, membership=rep, capacity=80)
        )
    services.routing_rule_save(
        rule=RoutingRule(
            organization=org,
            name="EMEA",
            priority=10,
            conditions=[{"field": "country", "operator": "in", "value": EMEA}],
            target_team=emea,
            method=RoutingMethod.ROUND_ROBIN,
        )
    )
    services.routing_rule_save(
        rule=RoutingRule(
            organization=org,
            name="Hot enterprise leads",
            priority=5,
            conditions=[
                {"field": "company_size", "operator": "gte", "value": 1000},
                {"field": "band", "operator": "eq", "value": "hot"},
            ],
            target_team=rest,
            method=RoutingMethod.LEAST_LOADED,
        )
    )
    # A few more MQLs by hand so every stage has something to show.
    extra = list(
        Lead.objects.filter(stage=LeadStage.NEW, discarded_at__isnull=True)
        .order_by("-score", "pk")
        .values_list("pk", flat=True)[:40]
    )
    services.leads_mark_mql(
        organization_id=org.pk, lead_ids=extra, source="manual", reason="Demo hand-over"
    )
    mqls = list(Lead.objects.filter(stage=LeadStage.MQL).values_list("pk", flat=True))
    services.leads_route(organization_id=org.pk, lead_ids=mqls)
    counts = _work(org, rng=random.Random(7))
    stdout.write(
        "  pipeline: 2 teams, 2 routing rules, "
        + ", ".join(f"{n} {stage}" for stage, n in counts.items())
    )


def _work(org, rng: random.Random) -> dict[str, int]:
    """Walk assigned MQLs through the funnel the way reps would."""
    done: dict[str, int] = {}
    assigned = (
        Assignment.objects.filter(is_current=True, lead__stage=LeadStage.MQL)
        .select_related("lead", "membership__user")
        .order_by("pk")
    )
    for i, assignment in enumerate(assigned):
        lead, rep = assignment.lead, assignment.membership
        try:
            outcome = _walk(lead, rep, i, rng)
        except PipelineError:
            continue
        done[outcome] = done.get(outcome, 0) + 1
    # One lead left untouched past its deadline: the team view shows a breach.
    services.sla_check(organization_id=org.pk, now=timezone.now() + timedelta(hours=5))
    return done


def _walk(lead: Lead, rep: Membership, i: int, rng: random.Random) -> str:
    step = i % 10
    if step in (0, 1, 2):  # still waiting in the queue
        return "waiting"
    if step == 3:
        services.lead_reject(lead=lead, actor=rep, reason_code=rng.choice(["bad_fit", "not_now"]))
        return "rejected"
    services.lead_accept(lead=lead, actor=rep)
    services.lead_touch(lead=lead, actor=rep, kind=ActivityKind.CALL, note="Intro call")
    if step == 4:
        return "accepted"
    services.qualification_save(
        lead=lead,
        actor=rep,
        data={
            "budget_amount": rng.choice([5000, 12000, 40000]),
            "budget_confirmed": rng.random() < 0.5,
            "authority_role": "Head of Marketing",
            "decision_maker": True,
            "need": "Leads fall through the cracks between marketing and sales.",
            "timing_window": "1_3m",
        },
    )
    services.lead_qualify(lead=lead, actor=rep)
    if step == 5:
        return "qualified"
    opportunity = services.opportunity_open(
        lead=lead,
        actor=rep,
        amount=rng.choice([8000, 15000, 30000, 60000]),
        expected_close_date=(timezone.now() + timedelta(days=rng.randint(10, 90))).date(),
        probability=rng.choice([20, 40, 60]),
        next_step="Send proposal",
    )
    if step == 7:  # further along the board
        stages = services.deal_stages_install(organization_id=lead.organization_id)
        services.opportunity_move(opportunity=opportunity, stage=stages[1], actor=rep)
    if step in (6, 7):
        return "opportunity"
    won = step == 8
    services.opportunity_close(
        opportunity=opportunity,
        actor=rep,
        won=won,
        reason="" if won else "Chose a competitor",
    )
    return "won" if won else "lost"
