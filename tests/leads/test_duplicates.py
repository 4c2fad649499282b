"""Possible duplicates: blocking keys, stored candidate pairs refreshed
incrementally (ingest, edits, discards) or rebuilt, and the review page that
reads them (keyset pages, dismiss, tenancy, pinned query counts)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from leads.models import ActivityKind, CandidateStatus, Channel, DuplicateCandidate, DuplicateKey
from leads.services import duplicates as dup
from leads.services import leads as lead_services
from leads.services.ingest import Touch, lead_ingest_batch
from tests.factories import CompanyFactory, LeadFactory


def url(name, org, **kwargs):
    return reverse(f"leads:{name}", kwargs={"org_slug": org.slug, **kwargs})


def pairs(org) -> dict[tuple[int, int], list[str]]:
    with tenant_scope(org):
        return {
            (c.lead_a_id, c.lead_b_id): c.reasons
            for c in DuplicateCandidate.objects.filter(status=CandidateStatus.OPEN)
        }


def refresh(org, *leads):
    with tenant_scope(org):
        dup.duplicates_refresh(organization_id=org.pk, lead_ids=[lead.pk for lead in leads])


# --- Keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "country"),
    [
        ("+49 30 123456", ""),
        ("030 123456", "DE"),
        ("0049 30 123456", "DE"),
        ("(030) 12-34-56", "de"),
        ("+4930123456", "US"),
    ],
)
def test_phone_key_is_e164_whatever_the_format(phone, country):
    assert dup.phone_key(phone, country) == "+4930123456"


def test_phone_key_refuses_what_is_not_a_number():
    assert dup.phone_key("12", "DE") == ""
    assert dup.phone_key("call me", "") == ""
    assert dup.phone_key("030 123456", "") == ""  # a national number needs a country


@pytest.mark.parametrize(
    "email",
    [
        "zoe.park@gmail.com",
        "ZoePark@googlemail.com",
        "zoe.park+news@gmail.com",
        "zoepark+a+b@googlemail.com",
    ],
)
def test_email_key_is_the_mailbox(email):
    assert dup.email_key(email) == "zoepark@gmail.com"


def test_email_key_keeps_dots_and_domains_elsewhere():
    assert dup.email_key("zoe.park+x@acme.example") == "zoe.park@acme.example"
    assert dup.email_key("zoe.park@acme.example") != dup.email_key("zoepark@acme.example")
    assert dup.email_key("not-an-email") == ""


def test_name_key_folds_accents_suffixes_and_first_names():
    key = dup.name_key("Zoë", "Park", "Initech Inc.")
    assert key == dup.name_key("zoe", "PARK", "initech") == dup.name_key("Z.", "Park", "Initech")
    assert dup.name_key("Zoe", "", "Initech") == ""  # no last name: not a key
    assert dup.name_key("Zoe", "Park", "") == ""  # no company: not a key
    assert dup.name_key("Zoe", "Park", "Initech") != dup.name_key("Ann", "Park", "Initech")


# --- Stored pairs -------------------------------------------------------------------


@pytest.mark.django_db
def test_pairs_found_by_each_key_and_never_across_tenants(org, other_org):
    company = CompanyFactory(organization=org, name="Initech")
    a = LeadFactory(organization=org, phone="+4930123456", first_name="X", last_name="One")
    b = LeadFactory(organization=org, phone="+49 30 123456", first_name="Y", last_name="Two")
    c = LeadFactory(organization=org, company=company, first_name="Jon", last_name="Smith")
    d = LeadFactory(organization=org, company=company, first_name="John", last_name="Smith")
    LeadFactory(organization=org, company=company, first_name="Maria", last_name="Garcia")
    e = LeadFactory(organization=org, company_name="Hooli", first_name="Ann", last_name="Lee")
    f = LeadFactory(organization=org, company_name="hooli GmbH", first_name="ann", last_name="lee")
    g = LeadFactory(organization=org, email="zoe.park@gmail.com")
    h = LeadFactory(organization=org, email="zoepark+news@googlemail.com")
    theirs = LeadFactory(organization=other_org, phone="+4930123456", email="zoepark@gmail.com")
    everyone = [a, b, c, d, e, f, g, h]
    with tenant_scope(other_org):
        dup.duplicates_refresh(organization_id=other_org.pk, lead_ids=[theirs.pk])
    refresh(org, *everyone)
    assert pairs(org) == {
        (a.pk, b.pk): ["Same phone"],
        (c.pk, d.pk): ["Similar name at the same company"],
        (e.pk, f.pk): ["Same name at the same company"],
        (g.pk, h.pk): ["Same mailbox"],
    }
    assert pairs(other_org) == {}
    with tenant_scope(org):
        scores = {(c.lead_a_id, c.lead_b_id): c.score for c in DuplicateCandidate.objects.all()}
    # Same name and company ranks above a shared phone between two different names.
    assert scores[(e.pk, f.pk)] > scores[(a.pk, b.pk)]


@pytest.mark.django_db
def test_a_shared_switchboard_number_is_not_a_person(org, other_org):
    leads = LeadFactory.create_batch(dup.BLOCK_LIMIT + 1, organization=org, phone="+4930999999")
    refresh(org, *leads)
    assert pairs(org) == {}


@pytest.mark.django_db
def test_ingest_refreshes_the_batch_pairs_after_commit(
    org, other_org, django_capture_on_commit_callbacks
):
    first = LeadFactory(organization=org, email="zoe@acme.example", phone="+4930123456")
    refresh(org, first)
    with tenant_scope(org), django_capture_on_commit_callbacks(execute=True):
        [result] = lead_ingest_batch(
            organization_id=org.pk,
            rows=[{"email": "z.park@b.example", "phone": "030 123456", "country": "DE"}],
            touch=Touch(source=Channel.DIRECT, activity_kind=ActivityKind.FORM_SUBMIT),
        )
    assert pairs(org) == {(first.pk, result.lead_id): ["Same phone"]}


@pytest.mark.django_db
def test_editing_a_key_field_refreshes_the_pairs(org, other_org, admin):
    a = LeadFactory(organization=org, phone="+4930123456")
    b = LeadFactory(organization=org, phone="+4930654321")
    refresh(org, a, b)
    assert pairs(org) == {}
    with tenant_scope(org):
        lead_services.lead_update(lead=b, data={"phone": "+49 30 123456"}, actor=admin)
    assert pairs(org) == {(a.pk, b.pk): ["Same phone"]}
    with tenant_scope(org):
        lead_services.lead_update(lead=b, data={"phone": "+4930777777"}, actor=admin)
    assert pairs(org) == {}


@pytest.mark.django_db
def test_discarding_a_lead_drops_its_pairs_and_keys(org, other_org, admin):
    a = LeadFactory(organization=org, phone="+4930123456")
    b = LeadFactory(organization=org, phone="+4930123456")
    refresh(org, a, b)
    with tenant_scope(org):
        lead_services.lead_discard(lead=b, actor=admin)
        assert not DuplicateKey.objects.filter(lead=b).exists()
    assert pairs(org) == {}


@pytest.mark.django_db
def test_dismissed_pairs_stay_dismissed_through_refresh_and_rebuild(org, other_org, admin):
    a = LeadFactory(organization=org, phone="+4930123456")
    b = LeadFactory(organization=org, phone="+4930123456")
    c = LeadFactory(organization=org, email="ann+x@gmail.com")
    d = LeadFactory(organization=org, email="ann@googlemail.com")
    refresh(org, a, b)
    with tenant_scope(org):
        candidate = DuplicateCandidate.objects.get(lead_a=a, lead_b=b)
        dup.duplicate_dismiss(candidate=candidate, actor=admin)
    refresh(org, a, b)
    with tenant_scope(org):
        DuplicateKey.objects.all().delete()
        dup.duplicates_rebuild(organization_id=org.pk)
        candidate.refresh_from_db()
    assert candidate.status == CandidateStatus.DISMISSED
    assert pairs(org) == {(c.pk, d.pk): ["Same mailbox"]}  # found by the rebuild


@pytest.mark.django_db
def test_refresh_costs_the_same_queries_for_5_or_50_leads(org, other_org):
    """Set-based: a batch's keys, one self-join, one upsert — never a query per lead."""

    def queries_for(n: int, offset: int) -> int:
        leads = [
            LeadFactory(organization=org, phone=f"+49301{offset + i:05d}") for i in range(n)
        ] + [LeadFactory(organization=org, phone=f"+49301{offset + i:05d}") for i in range(n)]
        with CaptureQueriesContext(connection) as ctx:
            refresh(org, *leads)
        assert len(pairs(org)) >= n
        return len(ctx.captured_queries)

    assert queries_for(5, 0) == queries_for(50, 1000)


# --- The page ---------------------------------------------------------------------------


@pytest.fixture
def many_pairs(org, other_org):
    def make(n: int, start: int = 0):
        leads = []
        for i in range(start, start + n):
            leads += LeadFactory.create_batch(2, organization=org, phone=f"+49302{i:05d}")
        refresh(org, *leads)

    LeadFactory.create_batch(2, organization=other_org, phone="+4930200000")
    return make


@pytest.mark.django_db
def test_duplicates_page_reads_the_table_in_pinned_queries(
    admin_client, org, many_pairs, django_assert_num_queries
):
    many_pairs(5)
    with django_assert_num_queries(4) as small:
        response = admin_client.get(url("duplicate_list", org))
    assert len(response.context["page"].candidates) == 5
    assert response.context["page"].next_cursor == ""
    many_pairs(120, start=100)
    with django_assert_num_queries(len(small.captured_queries)):
        response = admin_client.get(url("duplicate_list", org))
    page = response.context["page"]
    assert len(page.candidates) == 50 and page.next_cursor
    seen = {c.pk for c in page.candidates}
    for _ in range(3):
        if not page.next_cursor:
            break
        page = admin_client.get(url("duplicate_list", org), {"after": page.next_cursor}).context[
            "page"
        ]
        assert not seen & {c.pk for c in page.candidates}  # keyset: no repeats
        seen |= {c.pk for c in page.candidates}
    assert len(seen) == 125 and page.next_cursor == ""


@pytest.mark.django_db
def test_dismiss_from_the_page_and_other_tenants_pairs_are_404(
    admin_client, org, other_org, many_pairs
):
    many_pairs(1)
    with tenant_scope(org):
        candidate = DuplicateCandidate.objects.get()
    response = admin_client.post(url("duplicate_dismiss", org, candidate_id=candidate.pk))
    assert response.status_code == 302
    assert admin_client.get(url("duplicate_list", org)).context["page"].candidates == []
    with tenant_scope(other_org):
        leads = LeadFactory.create_batch(2, organization=other_org, phone="+4930111111")
        dup.duplicates_refresh(organization_id=other_org.pk, lead_ids=[x.pk for x in leads])
        theirs = DuplicateCandidate.objects.get()
    response = admin_client.post(url("duplicate_dismiss", org, candidate_id=theirs.pk))
    assert response.status_code == 404
    with tenant_scope(other_org):
        theirs.refresh_from_db()
    assert theirs.status == CandidateStatus.OPEN


@pytest.mark.django_db
def test_rebuild_button_fills_the_table(
    admin_client, org, other_org, django_capture_on_commit_callbacks
):
    LeadFactory.create_batch(2, organization=org, phone="+4930123456")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url("duplicates_rebuild", org))
    assert response.status_code == 302
    assert len(pairs(org)) == 1


@pytest.mark.django_db
def test_the_sweep_refreshes_leads_whose_task_was_lost(org, other_org):
    from datetime import timedelta

    from django.utils import timezone

    from leads.models import Lead
    from leads.tasks.duplicates import sweep_duplicates_all

    a = LeadFactory(organization=org, phone="+4930123456")
    refresh(org, a)
    lost = LeadFactory(organization=org, phone="030 123456", country="DE")  # no refresh ran
    fresh = LeadFactory(organization=org, phone="+4930123456")  # its task may still be queued
    theirs = LeadFactory(organization=other_org, phone="+4930123456")
    hour_ago = timezone.now() - timedelta(hours=1)
    with tenant_scope(org):
        Lead.objects.filter(pk=lost.pk).update(created_at=hour_ago)
    with tenant_scope(other_org):
        Lead.objects.filter(pk=theirs.pk).update(created_at=hour_ago)
    with tenant_scope(org):
        assert dup.leads_missing_keys() == [lost.pk]
    assert sweep_duplicates_all() >= 2  # one job per organization
    assert pairs(org) == {(a.pk, lost.pk): ["Same phone"]}
    with tenant_scope(org):
        assert dup.leads_missing_keys() == []
        assert not DuplicateKey.objects.filter(lead=fresh).exists()
    with tenant_scope(other_org):
        assert DuplicateKey.objects.filter(lead=theirs).exists()
