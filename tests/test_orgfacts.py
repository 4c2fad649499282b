"""Per-organization facts the single-lead path keeps in the cache: a change is
seen at once, each organization has its own, and a cache outage costs a query."""

from unittest import mock

import pytest

from leadflow.core.orgfacts import org_fact
from leadflow.core.tenancy import tenant_scope
from leads.services.consent import suppressed_emails, suppression_add

pytestmark = pytest.mark.django_db


def test_an_erasure_is_seen_at_once_after_none_was_cached(org, other_org):
    with tenant_scope(org):
        assert suppressed_emails(organization_id=org.pk, emails=["zoe@x.io"]) == set()
        suppression_add(organization_id=org.pk, email="zoe@x.io")
        assert suppressed_emails(organization_id=org.pk, emails=["zoe@x.io"]) == {"zoe@x.io"}
    with tenant_scope(other_org):  # the other tenant's fact is its own
        assert suppressed_emails(organization_id=other_org.pk, emails=["zoe@x.io"]) == set()


def test_a_cache_outage_loads_the_fact_instead_of_failing(org):
    with mock.patch("leadflow.core.orgfacts.cache") as cache:
        cache.get.side_effect = ConnectionError("refused")
        assert org_fact("answer", org.pk, lambda: 42) == 42
        cache.get.side_effect, cache.set.side_effect = None, ConnectionError("refused")
        cache.get.return_value = None
        assert org_fact("answer", org.pk, lambda: 43) == 43
