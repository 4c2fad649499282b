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


def test_a_prefetch_reads_every_known_fact_in_one_round_trip(org, other_org):
    from django.core.cache import cache

    from leadflow.core.orgfacts import org_fact_forget, org_facts_prefetched

    org_fact("one", org.pk, lambda: 1)
    org_fact("two", org.pk, lambda: 2)
    org_fact("two", other_org.pk, lambda: 20)
    with (
        mock.patch.object(cache, "get_many", wraps=cache.get_many) as get_many,
        org_facts_prefetched(org.pk),
        mock.patch.object(cache, "get", wraps=cache.get) as get,
    ):
        loads = []
        assert org_fact("one", org.pk, lambda: loads.append(1)) == 1
        assert org_fact("two", org.pk, lambda: loads.append(2)) == 2
        assert org_fact("two", other_org.pk, lambda: loads.append(20)) == 20
        assert get_many.call_count == 1 and loads == []
        assert get.call_count == 1  # only the other organization's fact
        org_fact_forget("one", org.pk)  # a change inside the block is seen at once
        assert org_fact("one", org.pk, lambda: 11) == 11


def test_a_new_pql_kind_is_seen_by_the_next_ingest(org, other_org):
    """pql_kinds is cached: saving the policy forgets it."""
    from leads.models import Lead
    from leads.services.ingest import Touch, lead_ingest_batch
    from pipeline.models import PipelinePolicy
    from pipeline.services.config import policy_save

    rows = [{"email": "user@startup.example"}]
    with tenant_scope(other_org):
        webinar = Touch(activity_kind="webinar")
        lead_ingest_batch(organization_id=other_org.pk, rows=rows, touch=webinar)
    trial = Touch(activity_kind="trial_signup")
    with tenant_scope(org):
        policy = PipelinePolicy.objects.create(organization=org, pql_rules=[])
        lead_ingest_batch(organization_id=org.pk, rows=rows, touch=trial)
        assert not Lead.objects.get().is_pql  # no rule counts trials: cached so
        policy.pql_rules = [{"kind": "trial_signup", "min_count": 1}]
        policy_save(policy=policy)
        lead_ingest_batch(organization_id=org.pk, rows=rows, touch=trial)
        assert Lead.objects.get().is_pql
    with tenant_scope(other_org):
        assert not Lead.objects.get().is_pql


def test_a_new_dynamic_list_is_refreshed_by_the_next_ingest(org, other_org, admin):
    """dynamic_lists is cached: creating a dynamic list forgets it."""
    from leads.models import Lead
    from leads.services.ingest import Touch, lead_ingest_batch
    from nurture import services as nurture
    from nurture.models import ListMembership

    with tenant_scope(org):
        lead_ingest_batch(organization_id=org.pk, rows=[{"email": "a@fr.example"}], touch=Touch())
        nurture_list = nurture.list_save(
            data={"name": "France", "kind": "dynamic", "filter": {"country": "FR"}}, actor=admin
        )
        assert nurture_list.member_count == 0
        rows = [{"email": "b@fr.example", "country": "FR"}]
        lead_ingest_batch(organization_id=org.pk, rows=rows, touch=Touch())
        member = ListMembership.objects.get(list=nurture_list, removed_at__isnull=True)
        assert member.lead_id == Lead.objects.get(email="b@fr.example").pk
    with tenant_scope(other_org):
        lead_ingest_batch(
            organization_id=other_org.pk,
            rows=[{"email": "c@fr.example", "country": "FR"}],
            touch=Touch(),
        )
        assert not ListMembership.objects.exists()
