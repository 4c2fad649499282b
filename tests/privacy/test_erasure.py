"""Right to erasure: one service deletes what identifies a person, keeps the
report counts (live and rollups, through later refreshes), and leaves a
suppression hash that every ingest path and every view honours."""

import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, Role
from leadflow.core.tenancy import tenant_scope
from leads.models import (
    Activity,
    ActivityKind,
    ConsentRecord,
    ErasedPerson,
    FieldType,
    FormSubmission,
    Lead,
    LeadMerge,
    SubmissionOutcome,
)
from leads.services import consent
from leads.services.activities import activity_record_batch
from leads.services.ingest import Touch, lead_ingest_batch
from nurture.models import EmailMessage, ListMembership, Suppression
from pipeline.models import Opportunity, Qualification, StageTransition
from privacy import services
from privacy.selectors import person_find
from reports.services.rollups import rollup_refresh
from reports.views.marketing import marketing_context
from tests import factories as f
from tests.reports.test_dashboard_queries import comparable
from tests.reports.test_funnel import build_dataset, build_noise, march

pytestmark = pytest.mark.django_db
EMAIL = "zoe.park@initech.com"


@pytest.fixture
def person(org, other_org):
    """Zoe: a lead with a merged-away duplicate (another address), touches, a
    submission, an email, consent, a list, BANT notes. Globex holds the same address."""
    with tenant_scope(other_org):
        f.LeadFactory(organization=other_org, email=EMAIL, first_name="Zoe")
    with tenant_scope(org):
        lead = f.LeadFactory(organization=org, email=EMAIL, first_name="Zoe", last_name="Park")
        old = f.LeadFactory(organization=org, email="zoe@home.example", merged_into=lead)
        LeadMerge.objects.create(
            organization=org, kept=lead, dropped=old, dropped_snapshot={"email": old.email}
        )
        f.ActivityFactory(lead=lead, kind=ActivityKind.NOTE, properties={"text": "Zoe's cat"})
        f.ActivityFactory(lead=old)
        f.FormSubmissionFactory(form__organization=org, lead=lead, payload={"email": EMAIL})
        f.FormSubmissionFactory(form__organization=org, payload={"email": "zoe@home.example"})
        enrollment = f.EnrollmentFactory(sequence__organization=org, lead=lead)
        f.EmailMessageFactory(enrollment=enrollment)
        ListMembership.objects.create(
            organization=org,
            list=f.NurtureListFactory(organization=org),
            lead=lead,
            added_at=timezone.now(),
            source="manual",
        )
        Qualification.objects.create(organization=org, lead=lead, need="Zoe needs a CRM")
        Suppression.objects.create(organization=org, email=EMAIL, reason="manual")
        consent.consent_record_batch(
            organization_id=org.pk,
            entries=[consent.ConsentEntry(lead_id=lead.pk, email=EMAIL, text="News")],
            action="given",
            source="form",
        )
    return lead


def _erase(org, actor, **kwargs):
    with tenant_scope(org):
        return services.person_erase(organization=org, actor=actor, **kwargs)


def _holds_address(org, address) -> list[str]:
    """Every row of the organization that still names the address."""
    with tenant_scope(org):
        checks = {
            "lead": Lead.objects.filter(email=address),
            "submission": FormSubmission.objects.filter(payload__email=address),
            "email": EmailMessage.objects.filter(to_email=address),
            "ledger": ConsentRecord.objects.filter(email=address),
            "suppression": Suppression.objects.filter(email=address),
            "merge": LeadMerge.objects.filter(dropped_snapshot__email=address),
        }
        return [name for name, qs in checks.items() if qs.exists()]


def test_erasure_deletes_the_person_and_suppresses_them(org, other_org, admin, person):
    result = _erase(org, admin, email=" Zoe.Park@Initech.com ")
    assert result.counts["leads"] == 2 and result.suppressed == 2
    assert _holds_address(org, EMAIL) == [] and _holds_address(org, "zoe@home.example") == []
    with tenant_scope(org):
        stub = Lead.objects.get(pk=person.pk)  # the anonymous fact the reports count
        assert (stub.email, stub.first_name, stub.last_name, stub.custom) == ("", "", "", {})
        assert stub.discarded_at and stub.external_id.startswith("erased:")
        assert not Lead.objects.filter(email="zoe@home.example").exists()
        assert not Activity.objects.exclude(properties={}).exists()
        assert not Qualification.objects.exists() and not ListMembership.objects.exists()
        assert ErasedPerson.objects.count() == 2
        hashes = set(ErasedPerson.objects.values_list("email_hash", flat=True))
        assert not any("zoe" in h for h in hashes)
        (event,) = AuditEvent.objects.filter(action="lead.erased")
        assert EMAIL not in json.dumps(event.data) + event.subject
        assert event.actor == admin and event.data["counts"]["emails"] == 1
    with tenant_scope(other_org):  # the other tenant's Zoe is theirs
        assert Lead.objects.get(email=EMAIL).first_name == "Zoe"
        assert not ErasedPerson.objects.exists()


def test_erasure_tells_the_crm_lead_deleted_without_the_address(org, admin, person):
    from pipeline.models import WebhookDelivery
    from tests.factories import WebhookEndpointFactory

    WebhookEndpointFactory(organization=org, events=["lead.deleted"])
    with tenant_scope(org):
        ids = sorted(
            [person.pk, *Lead.objects.filter(merged_into=person).values_list("pk", flat=True)]
        )
    _erase(org, admin, email=EMAIL)
    with tenant_scope(org):
        payloads = [d.payload for d in WebhookDelivery.objects.filter(event_type="lead.deleted")]
    assert sorted(p["data"]["lead"]["id"] for p in payloads) == ids and len(ids) == 2
    assert "zoe" not in json.dumps(payloads).lower()


def test_erasure_of_unknown_person_is_a_clear_audited_answer(org, other_org, admin, person):
    with pytest.raises(services.PersonUnknown, match="hold no data"):
        _erase(org, admin, email="nobody@initech.com")
    with tenant_scope(org):
        assert AuditEvent.objects.filter(action="lead.erasure_unknown").count() == 1
        assert not ErasedPerson.objects.exists()
        assert Lead.objects.filter(email=EMAIL).exists()


def test_an_erased_person_is_not_taken_in_again_on_any_path(org, other_org, admin, person):
    _erase(org, admin, email=EMAIL)
    with tenant_scope(org):
        # import and API batches: the row is refused with the reason, the others go in
        results = lead_ingest_batch(
            organization_id=org.pk,
            rows=[{"email": EMAIL.upper()}, {"email": "zoe@home.example"}, {"email": "a@b.io"}],
            touch=Touch(consent_origin="import: list.csv"),
        )
        assert [r.outcome for r in results] == ["invalid", "invalid", "created"]
        assert results[0].reasons[0]["code"] == "suppressed"
        # activities that would create missing leads
        batch = activity_record_batch(
            organization_id=org.pk,
            items=[{"lead": {"email": EMAIL}, "kind": "page_view"}],
            create_missing_leads=True,
        )
        assert batch.leads_created == 0
        assert not Lead.objects.filter(email=EMAIL).exists()
    with tenant_scope(other_org):  # suppression is per organization
        results = lead_ingest_batch(
            organization_id=other_org.pk, rows=[{"email": "zoe@home.example"}], touch=Touch()
        )
        assert results[0].outcome != "invalid" and results[0].lead_id


def test_the_hosted_form_quarantines_an_erased_person(
    org, other_org, admin, person, client, django_capture_on_commit_callbacks
):
    _erase(org, admin, email=EMAIL)
    form = f.CaptureFormFactory(organization=org)
    f.CaptureFormFieldFactory(form=form, key="email", field_type=FieldType.EMAIL, maps_to="email")
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/f/{form.key}/", {"email": EMAIL}).status_code == 200
    with tenant_scope(org):
        submission = FormSubmission.objects.get(form=form)
        assert submission.outcome == SubmissionOutcome.INVALID and submission.lead_id is None
        assert submission.outcome_reasons[0]["code"] == "suppressed"
        assert not Lead.objects.filter(email=EMAIL).exists()


def test_report_counts_survive_erasure_and_later_rollup_refreshes(org, other_org, admin):
    build_dataset(org)
    build_noise(other_org)
    with tenant_scope(org):
        won = Opportunity.objects.get(status="won").lead
        rollup_refresh(organization_id=org.pk, full=True)
        before = comparable(marketing_context(march(org), fast=False))
        assert comparable(marketing_context(march(org))) == before
        transitions = StageTransition.objects.filter(lead=won).count()
    _erase(org, admin, lead=won)
    with tenant_scope(org):
        assert StageTransition.objects.filter(lead=won).count() == transitions
        assert Lead.objects.get(pk=won.pk).email == ""
        assert comparable(marketing_context(march(org), fast=False)) == before  # live
        rollup_refresh(organization_id=org.pk)  # the incremental refresh recounts its day
        assert comparable(marketing_context(march(org))) == before
        rollup_refresh(organization_id=org.pk, full=True)  # and the nightly rebuild
        assert comparable(marketing_context(march(org))) == before


# --- pages ---------------------------------------------------------------------------


def test_erase_page_confirms_first_then_erases(org, other_org, admin_client, person):
    url = reverse("privacy:erase", kwargs={"org_slug": org.slug})
    page = admin_client.post(url, {"email": EMAIL})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="erase-warning"' in html and "cannot be undone" in html
    assert "Form submissions" in html and "Consent ledger" in html
    with tenant_scope(org):
        assert Lead.objects.filter(email=EMAIL).exists()  # nothing happened yet
    done = admin_client.post(url, {"email": EMAIL, "confirm": "yes"}, follow=True)
    assert "Erased:" in done.content.decode()
    assert _holds_address(org, EMAIL) == []


def test_erase_from_the_lead_page(org, other_org, admin_client, person):
    detail = admin_client.get(reverse("leads:lead_detail", args=[org.slug, person.pk]))
    assert b'data-testid="privacy-panel"' in detail.content
    url = reverse("privacy:erase", kwargs={"org_slug": org.slug})
    admin_client.post(url, {"lead": person.pk, "confirm": "yes"})
    assert _holds_address(org, EMAIL) == []


def test_unknown_person_page_says_so(org, other_org, admin_client):
    url = reverse("privacy:person", kwargs={"org_slug": org.slug})
    page = admin_client.post(url, {"email": "nobody@initech.com"})
    assert b'data-testid="person-unknown"' in page.content


def test_another_orgs_lead_is_404_and_non_admins_are_refused(
    org, other_org, admin_client, make_member, client_for, person
):
    with tenant_scope(other_org):
        theirs = Lead.objects.get(email=EMAIL)
    for name in ("erase", "export", "person"):
        url = reverse(f"privacy:{name}", kwargs={"org_slug": org.slug})
        assert admin_client.post(url, {"lead": theirs.pk, "confirm": "yes"}).status_code == 404
    with tenant_scope(other_org):
        assert Lead.objects.get(pk=theirs.pk).email == EMAIL
    for role in (Role.MARKETER, Role.SALES_REP):
        client = client_for(make_member(org, role))
        url = reverse("privacy:erase", kwargs={"org_slug": org.slug})
        assert client.post(url, {"email": EMAIL, "confirm": "yes"}).status_code == 403
        detail = client.get(reverse("leads:lead_detail", args=[org.slug, person.pk]))
        assert b'data-testid="privacy-panel"' not in detail.content
    assert Client().post(reverse("privacy:erase", kwargs={"org_slug": org.slug})).status_code in (
        302,
        404,
    )


def test_person_lookup_follows_merges_both_ways(org, other_org, person):
    with tenant_scope(org):
        old = Lead.objects.get(email="zoe@home.example")
        assert person_find(lead=old).lead_ids == sorted([person.pk, old.pk])
        assert person_find(email=EMAIL).emails == {EMAIL, "zoe@home.example"}


def test_an_erased_email_less_record_is_not_synced_in_again(org, other_org, admin):
    with tenant_scope(org):
        crm = f.LeadFactory(organization=org, email="", external_id="CRM-42", first_name="Ann")
    result = _erase(org, admin, lead=crm)
    assert result.suppressed == 1
    with tenant_scope(org):
        assert not Lead.objects.filter(external_id="CRM-42").exists()
        again = lead_ingest_batch(
            organization_id=org.pk,
            rows=[{"external_id": "CRM-42", "first_name": "Ann"}],
            touch=Touch(consent_origin="api: CRM"),
        )
        assert again[0].outcome == "invalid" and again[0].reasons[0]["code"] == "suppressed"
    with tenant_scope(other_org):
        theirs = lead_ingest_batch(
            organization_id=other_org.pk, rows=[{"external_id": "CRM-42"}], touch=Touch()
        )
        assert theirs[0].lead_id
