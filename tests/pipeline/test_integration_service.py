"""pipeline.services.integrations: the API's stage move is a service that raises
domain errors (the API turns them into its 400s), usable without HTTP."""

from __future__ import annotations

import pytest
from django.http import Http404
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from pipeline.errors import IntegrationMoveRefused, LeadInactive, ReasonRequired
from pipeline.models import StageTransition
from pipeline.services.integrations import integration_transition
from tests.factories import LeadFactory
from tests.pipeline.support import pipeline_only  # noqa: F401


def _move(lead, to, reason="Booked a demo"):
    return integration_transition(
        lead_id=lead.pk, to=to, reason_code="", reason=reason, source="CRM"
    )


@pytest.mark.django_db
def test_an_integration_move_is_made_and_recorded_by_the_service(org, other_org):
    lead = LeadFactory(organization=org)
    foreign = LeadFactory(organization=other_org)
    with tenant_scope(org):
        moved, transition = _move(lead, "mql")
        assert (moved.stage, transition.rule, transition.actor_id) == ("mql", "api:CRM", None)
        with pytest.raises(Http404):
            _move(foreign, "mql")
    with tenant_scope(other_org):
        assert not StageTransition.objects.exists()


@pytest.mark.django_db
def test_refusals_are_domain_errors(org):
    new = LeadFactory(organization=org)
    merged = LeadFactory(organization=org, discarded_at=timezone.now())
    with tenant_scope(org):
        with pytest.raises(IntegrationMoveRefused) as refused:
            _move(new, "sal")
        assert refused.value.from_stage == "new"
        assert "an API integration" in str(refused.value) or "cannot move" in str(refused.value)
        with pytest.raises(ReasonRequired):
            _move(new, "mql", reason="")
        with pytest.raises(LeadInactive):
            _move(merged, "mql")
        assert not StageTransition.objects.exists()
