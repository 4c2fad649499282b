"""Helpers shared by the pipeline tests (plain functions; fixtures stay in the modules)."""

from __future__ import annotations

import pytest

from accounts.models import Role
from leadflow.core import hooks
from leads.models import Lead
from pipeline.models import Assignment, StageTransition
from tests.factories import (
    AssignmentFactory,
    LeadFactory,
    MembershipFactory,
    TeamFactory,
    TeamMemberFactory,
)


def rep(org, **kwargs):
    return MembershipFactory(organization=org, role=Role.SALES_REP, **kwargs)


def team_with(org, n: int, **team_kwargs):
    """A team and n sales reps in it (seats returned in creation order)."""
    team = TeamFactory(organization=org, **team_kwargs)
    return team, [TeamMemberFactory(team=team) for _ in range(n)]


def mql_for(membership, **lead_kwargs) -> Lead:
    """An MQL currently assigned to `membership`."""
    lead = LeadFactory(organization=membership.organization, stage="mql", **lead_kwargs)
    AssignmentFactory(lead=lead, membership=membership)
    return lead


def fresh(lead: Lead) -> Lead:
    return Lead.objects.get(pk=lead.pk)


def history(lead: Lead) -> list[tuple[str, str]]:
    return list(
        StageTransition.objects.filter(lead=lead)
        .order_by("occurred_at", "pk")
        .values_list("from_stage", "to_stage")
    )


def current_rep(lead: Lead) -> int | None:
    return (
        Assignment.objects.filter(lead=lead, is_current=True)
        .values_list("membership_id", flat=True)
        .first()
    )


@pytest.fixture(autouse=True)
def pipeline_only(monkeypatch):
    """Higher apps (nurture…) subscribe to stage changes; their own tests cover that.
    Import this fixture into a module to test the pipeline on its own."""
    monkeypatch.setattr(hooks.stage_changed, "overridden", [])
