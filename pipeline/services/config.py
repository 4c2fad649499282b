"""Writes on routing configuration: teams, their members (capacity, weight,
away), routing rules and the pipeline policy. Forms validate shapes; these
enforce the rules that need the database (one default team, sellers only…)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from accounts.models import Membership
from pipeline.errors import RoutingConfigError
from pipeline.models import PipelinePolicy, RoutingMethod, RoutingRule, Team, TeamMember
from pipeline.policy import clean_policy
from pipeline.routing import SELLER_ROLES, clean_conditions


def _seller(organization_id: int, membership_id: int | None, what: str) -> None:
    ok = (
        membership_id is not None
        and Membership.objects.filter(
            pk=membership_id, organization_id=organization_id, is_active=True, role__in=SELLER_ROLES
        ).exists()
    )
    if not ok:
        raise RoutingConfigError(f"{what} must be an active sales rep or admin.")


@transaction.atomic
def team_save(*, team: Team, actor: Membership | None = None) -> Team:
    """Create or update a team; making it the default unsets the previous default."""
    team.name = (team.name or "").strip()
    if not team.name:
        raise RoutingConfigError("The team needs a name.")
    if Team.objects.filter(name__iexact=team.name).exclude(pk=team.pk).exists():
        raise RoutingConfigError(f"There is already a team called {team.name}.")
    if team.team_lead_id:
        membership = Membership.objects.filter(
            pk=team.team_lead_id, organization_id=team.organization_id, is_active=True
        )
        if not membership.exists():
            raise RoutingConfigError("The team lead must be an active member.")
    if team.is_default:
        Team.objects.filter(is_default=True).exclude(pk=team.pk).update(is_default=False)
    team.save()
    return team


@transaction.atomic
def team_delete(*, team: Team) -> None:
    """Remove a team, its seats and the rules routing to it (assignments keep their history)."""
    team.delete()


@transaction.atomic
def team_member_save(*, member: TeamMember) -> TeamMember:
    """Add a rep to a team, or change a member's capacity and weight. A new member
    joins the round robin level with the team, not behind it (no catch-up flood)."""
    _seller(member.organization_id, member.membership_id, "A team member")
    if not 1 <= int(member.capacity or 0) <= 100_000:
        raise RoutingConfigError("Capacity is between 1 and 100,000 open leads.")
    if not 1 <= int(member.weight or 0) <= 10:
        raise RoutingConfigError("The weight is between 1 and 10.")
    if member.team.organization_id != member.organization_id:
        raise RoutingConfigError("Unknown team.")
    clash = TeamMember.objects.filter(team_id=member.team_id, membership_id=member.membership_id)
    if clash.exclude(pk=member.pk).exists():
        raise RoutingConfigError("This rep is already in the team.")
    if member.pk is not None:
        # Routing owns the rotation fields and away has its own service: a form's
        # copy of the row must not write stale values back over them.
        member.save(update_fields=["capacity", "weight"])
        return member
    others = TeamMember.objects.filter(team_id=member.team_id, is_away=False)
    member.rr_pass = others.aggregate(p=Min("rr_pass"))["p"] or 0.0
    member.save()
    return member


@transaction.atomic
def team_member_remove(*, member: TeamMember) -> None:
    member.delete()


@transaction.atomic
def team_member_set_away(
    *, member: TeamMember, away: bool, now: datetime | None = None
) -> TeamMember:
    """Switch a rep's away flag. Coming back puts them at the back of the round
    robin (as if they had just been assigned), so they are not flooded with the
    turns they missed."""
    now = now or timezone.now()
    current = TeamMember.objects.select_for_update().get(pk=member.pk)
    if current.is_away == away:
        return current
    current.is_away = away
    current.away_since = now if away else None
    if not away:
        others = TeamMember.objects.filter(team_id=current.team_id, is_away=False).exclude(
            pk=current.pk
        )
        back = others.aggregate(p=Max("rr_pass"))["p"]
        current.rr_pass = max(current.rr_pass, back if back is not None else current.rr_pass)
        current.last_assigned_at = now
    current.save()
    for name in ("is_away", "away_since", "rr_pass", "last_assigned_at"):
        setattr(member, name, getattr(current, name))
    return current


@transaction.atomic
def routing_rule_save(*, rule: RoutingRule, actor: Membership | None = None) -> RoutingRule:
    """Validate the conditions (scoring's field registry) and the single target, then save."""
    rule.name = (rule.name or "").strip()
    if not rule.name:
        raise RoutingConfigError("The rule needs a name.")
    if RoutingRule.objects.filter(name__iexact=rule.name).exclude(pk=rule.pk).exists():
        raise RoutingConfigError(f"There is already a routing rule called {rule.name}.")
    if bool(rule.target_team_id) == bool(rule.target_rep_id):
        raise RoutingConfigError("Route to a team or to one rep (exactly one of them).")
    if rule.target_team_id and not Team.objects.filter(pk=rule.target_team_id).exists():
        raise RoutingConfigError("Unknown team.")
    if rule.target_rep_id:
        _seller(rule.organization_id, rule.target_rep_id, "The target rep")
    if rule.method not in RoutingMethod.values:
        raise RoutingConfigError("Pick round robin or least loaded.")
    rule.conditions = clean_conditions(rule.conditions or [])
    rule.save()
    return rule


@transaction.atomic
def routing_rule_delete(*, rule: RoutingRule) -> None:
    rule.delete()


@transaction.atomic
def policy_save(*, policy: PipelinePolicy, actor: Membership | None = None) -> PipelinePolicy:
    """Validate and store the SLA, BANT, breach and PQL settings."""
    clean_policy(policy)
    policy.save()
    return policy
