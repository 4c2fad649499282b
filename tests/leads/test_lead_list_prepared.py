"""The lead list's first page comes from a statement compiled once per process
(leads.selectors.lead_list_first_rows, leadflow.core.prepared): for every role,
tenant and page size it must answer exactly what the ORM answers."""

from __future__ import annotations

import pytest

from accounts.models import Role
from leadflow.core.pagination import COUNT_CAP, TOTAL, first_page_query
from leadflow.core.tenancy import tenant_scope
from leads import selectors
from tests import factories as f

pytestmark = pytest.mark.django_db


def _orm(membership, limit):
    query = first_page_query(selectors.lead_list_newest(membership=membership), COUNT_CAP)
    return list(query[:limit])


@pytest.mark.parametrize("role", [value for value, _ in Role.choices])
def test_the_first_page_equals_the_orms_for_every_role_and_tenant(role, org, other_org):
    seats = {}
    for organization in (org, other_org):
        with tenant_scope(organization):
            member = f.MembershipFactory(organization=organization, role=role)
            rep = f.MembershipFactory(organization=organization, role=Role.SALES_REP)
            company = f.CompanyFactory(organization=organization)
            f.LeadFactory.create_batch(4, organization=organization, owner=member)
            f.LeadFactory.create_batch(3, organization=organization, owner=rep, company=company)
            f.LeadFactory(organization=organization, discarded_at="2026-01-01T00:00:00Z")
            seats[organization.pk] = (member, rep)
    for organization in (org, other_org):
        with tenant_scope(organization):
            for membership in seats[organization.pk]:
                for limit in (1, 3, 51):
                    rows = selectors.lead_list_first_rows(membership=membership, limit=limit)
                    assert rows == _orm(membership, limit)
                    assert [r._fields for r in rows[:1]] == [r._fields for r in _orm(membership, 1)]
                    assert all(getattr(r, TOTAL) == len(_orm(membership, 51)) for r in rows)
