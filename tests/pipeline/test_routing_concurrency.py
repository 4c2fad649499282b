"""Two MQLs routed at once never overfill a rep: routing locks the reps it may
pick before counting their open leads. Real threads with their own connections,
so this needs PostgreSQL's row locks."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from pipeline import services
from pipeline.models import Assignment
from tests.factories import LeadFactory
from tests.pipeline.support import pipeline_only, rep, team_with  # noqa: F401

THREADS = 8


@pytest.mark.django_db(transaction=True)
def test_concurrent_routing_never_exceeds_capacity(org, other_org):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (SQLite serializes writers)")
    with tenant_scope(org):
        _team, seats = team_with(org, 2, is_default=True)
        # One rep also sits in a second team that a rule targets: locks must cover both.
        other_team, _ = team_with(org, 0, name="Enterprise")
        services.team_member_save(
            member=type(seats[0])(
                organization=org, team=other_team, membership=seats[0].membership, capacity=3
            )
        )
        for seat in seats:
            seat.capacity = 3
            services.team_member_save(member=seat)
        from tests.factories import RoutingRuleFactory

        RoutingRuleFactory(
            organization=org,
            target_team=other_team,
            conditions=[{"field": "country", "operator": "eq", "value": "US"}],
        )
        leads = [
            LeadFactory(organization=org, stage="mql", country="US" if i % 2 else "DE").pk
            for i in range(THREADS * 2)
        ]
    barrier = threading.Barrier(THREADS)
    errors = []

    def work(pair):
        try:
            barrier.wait(timeout=30)
            with tenant_scope(org.pk):
                for lead_id in pair:
                    services.leads_route(organization_id=org.pk, lead_ids=[lead_id])
        except Exception as exc:  # reported below; a thread must not die silently
            errors.append(exc)
        finally:
            connection.close()

    pairs = [leads[i::THREADS] for i in range(THREADS)]
    threads = [threading.Thread(target=work, args=(p,)) for p in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with tenant_scope(org):
        for seat in seats:
            assert Lead.objects.filter(owner=seat.membership, stage="mql").count() == 3
        assert Assignment.objects.filter(is_current=True).count() == 6
        assert Lead.objects.filter(stage="mql", owner__isnull=True).count() == THREADS * 2 - 6
    with tenant_scope(other_org):
        assert not Assignment.objects.exists()
