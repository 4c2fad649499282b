"""Lead search (leads/search.py): the indexed search returns exactly what plain
`icontains` returns, on SQLite (FTS5 trigram) and on PostgreSQL (pg_trgm GIN);
another tenant's leads are never found; the list, the API and the nurture
picker agree; on PostgreSQL the plan uses the trigram indexes."""

from functools import reduce
from operator import or_

import pytest
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection
from django.db.models import Q
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadflow.core.tenancy import tenant_scope
from leads import search
from leads.models import Company, Lead
from nurture import selectors as nurture_selectors
from tests.factories import CompanyFactory, LeadFactory, NurtureListFactory, api_key_for

ROWS = [
    # email, first, last, company_name, company (its name) or None
    ("ann.lee@initech.example", "Ann", "Lee", "Initech", "Initech Holdings"),
    ("jo@umbrella.example", "Jo", "Ng", "Umbrella Corp", None),
    ("m.mueller@example.de", "Jürgen", "Müller", "Équipe Öko GmbH", "ÉQUIPE ÖKO"),
    ("ola@example.no", "Øla", "Ødegård", "", None),
    ("100%@percent.example", "Pat", "O'Brien", "50_50 Ltd", None),
    ("quote@example.com", 'Dan "DJ"', "Jones", "Acme", "Acme Inc"),
    ("zed@hooli.example", "Zed", "Ito", "", "Hooli"),
    ("li@example.cn", "Li", "Wu", "北京科技", None),
]
QUERIES = [
    "ann", "ANN", "an", "a", "Lee initech", "holdings", "hooli", "ÉQUIPE", "équipe",
    "müller", "MÜLLER", "ü", "Ø", "ødegård", "%", "_", "50_50", "100%", "'", "o'brien",
    '"', '"dj"', "acme inc", "科技", "北", ".example", "example ann", "zzz", "globex",
    "secret", "  ", "a b c d e f",
]  # fmt: skip


@pytest.fixture
def leads(org, other_org):
    # The other tenant holds leads matching most queries: never found.
    for n, (email, first, last, company_name, _company) in enumerate(ROWS):
        LeadFactory(
            organization=other_org,
            email=f"other{n}.{email}",
            first_name=first,
            last_name=last,
            company_name=company_name,
        )
    CompanyFactory(organization=other_org, name="Globex secret", domain="globex.example")
    LeadFactory(organization=other_org, email="secret@globex.example", last_name="Globex")
    made = []
    for email, first, last, company_name, company in ROWS:
        owner = CompanyFactory(organization=org, name=company) if company else None
        made.append(
            LeadFactory(
                organization=org,
                email=email,
                first_name=first,
                last_name=last,
                company_name=company_name,
                company=owner,
            )
        )
    return made


def naive(q: str) -> set[int]:
    """Plain icontains, term by term: the definition the index must reproduce."""
    qs = Lead.objects.all()
    for term in q.split()[: search.MAX_TERMS]:
        fields = [*search.LEAD_FIELDS, "company__name"]
        qs = qs.filter(reduce(or_, (Q(**{f"{f}__icontains": term}) for f in fields)))
    return set(qs.values_list("pk", flat=True))


def searched(q: str) -> set[int]:
    return set(search.search_leads(Lead.objects.all(), q).values_list("pk", flat=True))


@pytest.mark.django_db
@pytest.mark.parametrize("q", QUERIES)
def test_search_equals_plain_icontains(org, leads, q):
    with tenant_scope(org):
        assert searched(q) == naive(q)
        assert searched(q) <= {lead.pk for lead in leads}


@pytest.mark.django_db
def test_search_finds_what_a_person_expects(org, leads):
    ann, jo, juergen, ola, pat, dan, zed, li = leads
    with tenant_scope(org):
        assert searched("ANN") == {ann.pk}
        assert searched("lee initech") == {ann.pk}  # every term, any field
        assert searched("holdings") == {ann.pk}  # the company's own name
        assert searched("hooli") == {zed.pk}  # the company's name only (email too)
        assert searched("Jo") >= {jo.pk}  # a short term, no trigram
        assert searched("100%") == {pat.pk}  # LIKE wildcards are literal
        assert searched("50_50") == {pat.pk}
        assert searched('"dj"') == {dan.pk}
        assert searched("科技") == {li.pk}
        assert searched("globex") == searched("secret") == set()  # the other tenant's
        assert searched("zzz") == set()
        if connection.vendor == "postgresql":  # UPPER() folds every script there
            assert searched("équipe") == searched("MÜLLER") == {juergen.pk}
            assert searched("ødegård") == {ola.pk}


@st.composite
def substrings(draw):
    """A piece of a stored value, perhaps upper-cased."""
    value = draw(st.sampled_from([row[i] for row in ROWS for i in range(5) if row[i]]))
    start = draw(st.integers(0, len(value) - 1))
    piece = value[start : draw(st.integers(start + 1, len(value)))]
    return piece.upper() if draw(st.booleans()) else piece


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(q=st.one_of(substrings(), st.text(alphabet="aeiouÄäÖöÜüéÉøØß%_'\" .@-科", max_size=6)))
def test_search_equals_plain_icontains_for_any_term(org, leads, q):
    """Substrings of the stored values (any case) and arbitrary short strings."""
    with tenant_scope(org):
        assert searched(q) == naive(q)


@pytest.mark.django_db
def test_index_follows_inserts_updates_and_deletes(org, other_org, leads):
    ann = leads[0]
    with tenant_scope(org):
        changes = {"last_name": "Lindqvist", "first_name": "Annika"}
        changes |= {"email": "al@fresh.example", "company_name": "Vandelay"}
        for field, value in changes.items():
            Lead.objects.filter(pk=ann.pk).update(**{field: value})  # one column at a time
            assert searched(value) == {ann.pk}, field
        assert searched("ann.lee") == searched("lee") == set()
        new = LeadFactory(organization=org, email="new@novel.example", first_name="Novella")
        assert searched("novel") == {new.pk}
        new.delete()
        assert searched("novel") == set()
        assert searched("holdings") == {ann.pk}  # its company's name, unchanged


@pytest.mark.django_db
def test_sqlite_index_is_rebuilt_after_a_migration_drops_its_triggers(org, other_org, leads):
    """Django rebuilds a SQLite table to alter it, which drops its triggers; the
    post_migrate hook puts them back and reindexes what changed meanwhile."""
    if connection.vendor != "sqlite" or not search.SQLITE_TRIGRAM:
        pytest.skip("the FTS5 index is SQLite's")
    with connection.cursor() as cursor:
        for name in search.SQLITE_TRIGGERS:
            cursor.execute(f"DROP TRIGGER {name}")
    with tenant_scope(org):
        Lead.objects.filter(pk=leads[0].pk).update(last_name="Rebuilt")
        emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
        assert searched("rebuilt") == {leads[0].pk}
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        assert set(search.SQLITE_TRIGGERS) <= {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db
@pytest.mark.parametrize("q", ["ann", "holdings", "hooli", "Jo", "example", "zzz", "ÉQUIPE"])
def test_list_api_and_nurture_picker_search_alike(org, leads, admin_client, q):
    list_url = reverse("leads:lead_list", kwargs={"org_slug": org.slug})
    on_list = {lead.pk for lead in admin_client.get(list_url, {"q": q}).context["page"]}
    api = Client(headers={"Authorization": f"Bearer {api_key_for(org)}"})
    by_api = {item["id"] for item in api.get("/api/v1/leads", {"q": q}).json()["items"]}
    with tenant_scope(org):
        expected = naive(q)
        picker = nurture_selectors.lead_search(
            nurture_list=NurtureListFactory(organization=org), q=q
        )
    assert on_list == by_api == {lead.pk for lead in picker} == expected


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_plan_uses_the_trigram_indexes(org, leads):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's plan")
    from bench import rescore_data  # generates rows inside PostgreSQL

    now = timezone.now()
    with tenant_scope(org):  # a tenant large enough that reading it all costs more
        first = Company.objects.order_by("-pk").values_list("pk", flat=True)[0] + 1
        rescore_data.add_companies(organization_id=org.pk, start=10**8, count=2000, now=now)
        companies = (first, first + 1999)  # one INSERT: consecutive ids
        rescore_data.add_leads(
            organization_id=org.pk, start=10**8, count=20_000, companies=companies, now=now
        )
        with connection.cursor() as cursor:
            # VACUUM writes the GIN statistics the planner costs it by (and needs
            # autocommit: a transactional test, whose tables are emptied after).
            cursor.execute("VACUUM ANALYZE leads_lead")
            cursor.execute("VACUUM ANALYZE leads_company")
        for q, index in [("mueller", "lead_search_trgm"), ("hooli", "company_name_trgm")]:
            page = search.search_leads(Lead.objects.all(), q).order_by("-created_at")[:50]
            plan = page.explain()
            assert f"Bitmap Index Scan on {index}" in plan, plan
