"""Double opt-in per form, the append-only consent ledger, withdrawals on unsubscribe."""

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from leadflow.core.tenancy import tenant_scope
from leads.models import (
    AppendOnlyError,
    ConsentConfirmation,
    ConsentRecord,
    FieldType,
    Lead,
)
from leads.services import consent
from leads.services.capture import submission_process
from leads.services.ingest import Touch, lead_ingest_batch
from leads.tasks.consent import send_consent_confirmation
from nurture import tokens
from tests.factories import (
    CaptureFormFactory,
    CaptureFormFieldFactory,
    EmailMessageFactory,
    EnrollmentFactory,
)

pytestmark = pytest.mark.django_db
TEXT = "Send me product news by email. I can unsubscribe at any time."


def _form(org, **kwargs):
    form = CaptureFormFactory(organization=org, consent_text=TEXT, **kwargs)
    CaptureFormFieldFactory(
        form=form, key="email", label="Email", field_type=FieldType.EMAIL, maps_to="email"
    )
    return form


@pytest.fixture
def doi_form(org, other_org):
    _form(other_org, name="Look-alike", double_opt_in=True)
    return _form(org, name="Newsletter", double_opt_in=True)


def _submit(client, form, email, consent=True):
    data = {"email": email, **({"consent": "on"} if consent else {})}
    return client.post(f"/f/{form.key}/", data, REMOTE_ADDR="203.0.113.9")


def _link(message) -> str:
    return re.search(r"https?://\S+/c/\S+/", message.body).group(0)


def test_double_opt_in_records_consent_only_on_click(
    client, org, other_org, doi_form, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert _submit(client, doi_form, "Ann@Initech.com").status_code == 200
    with tenant_scope(org):
        lead = Lead.objects.get(email="ann@initech.com")
        assert not lead.email_opt_in  # ticked, not yet confirmed
        assert not ConsentRecord.objects.exists()
        confirmation = ConsentConfirmation.objects.get()
        assert confirmation.sent_at and confirmation.consent_text == TEXT
    (message,) = mail.outbox
    assert message.to == ["ann@initech.com"] and TEXT in message.body
    path = "/" + _link(message).split("/", 3)[3]

    # Opening the link shows what is confirmed; a mail scanner's GET records nothing.
    page = client.get(path)
    assert page.status_code == 200 and b'data-testid="consent-confirm"' in page.content
    with tenant_scope(org):
        assert not Lead.objects.get(pk=lead.pk).email_opt_in

    for _ in range(2):  # a double click records one consent
        done = client.post(path, REMOTE_ADDR="198.51.100.7")
        assert done.status_code == 200 and b'data-testid="consent-confirmed"' in done.content
    with tenant_scope(org):
        lead.refresh_from_db()
        assert lead.email_opt_in and "double opt-in" in lead.email_opt_in_origin
        (record,) = ConsentRecord.objects.all()
        assert (record.action, record.source, record.text) == ("given", "form", TEXT)
        assert record.email == "ann@initech.com" and record.lead_id == lead.pk
        assert record.ip_hash and "198.51.100.7" not in record.ip_hash
        assert AuditEvent.objects.filter(action="consent.given").count() == 1
    with tenant_scope(other_org):
        assert not ConsentRecord.objects.exists() and not Lead.objects.exists()


def test_confirmation_email_is_sent_once(
    org, other_org, doi_form, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _submit(client, doi_form, "bob@initech.com")
    with tenant_scope(org):
        confirmation = ConsentConfirmation.objects.get()
        submission_process(submission_id=confirmation.submission_id)  # a redelivery
        assert ConsentConfirmation.objects.count() == 1
    for _ in range(3):  # the send task redelivered
        send_consent_confirmation.delay(organization_id=org.pk, confirmation_id=confirmation.pk)
    assert len(mail.outbox) == 1


def test_unticked_box_or_single_opt_in_form(
    org, other_org, client, django_capture_on_commit_callbacks
):
    single = _form(org, name="Single")
    doi = _form(org, name="Double", double_opt_in=True)
    with django_capture_on_commit_callbacks(execute=True):
        _submit(client, single, "cara@initech.com")
        _submit(client, doi, "dan@initech.com", consent=False)
    with tenant_scope(org):
        assert Lead.objects.get(email="cara@initech.com").email_opt_in
        (record,) = ConsentRecord.objects.all()  # single opt-in: recorded at capture
        assert (record.email, record.source, record.text) == ("cara@initech.com", "form", TEXT)
        assert record.ip_hash
        assert not ConsentConfirmation.objects.exists()
        assert not Lead.objects.get(email="dan@initech.com").email_opt_in


def test_bad_or_foreign_token_is_refused(client, org, doi_form):
    response = client.get(reverse("leads:consent_confirm", kwargs={"token": "forged"}))
    assert response.status_code == 400 and b"not valid" in response.content


def test_ledger_is_append_only(org, other_org):
    with tenant_scope(org):
        lead = Lead.objects.create(organization=org, email="eve@initech.com")
        consent.consent_record_batch(
            organization_id=org.pk,
            entries=[consent.ConsentEntry(lead_id=lead.pk, email="eve@initech.com", text=TEXT)],
            action="given",
            source="api",
        )
        record = ConsentRecord.objects.get()
        record.text = "something else"
        with pytest.raises(AppendOnlyError):
            record.save()
        with pytest.raises(AppendOnlyError):
            record.delete()
        with pytest.raises(AppendOnlyError):
            ConsentRecord.objects.filter(pk=record.pk).update(text="x")
        with pytest.raises(AppendOnlyError):
            ConsentRecord.objects.all().delete()
        assert ConsentRecord.objects.get().text == TEXT
        # Only an erasure takes rows out.
        assert ConsentRecord.objects.filter(email="eve@initech.com").erase() == 1


def test_import_and_api_consents_are_in_the_ledger(org, other_org):
    with tenant_scope(org):
        lead_ingest_batch(
            organization_id=org.pk,
            rows=[{"email": "fay@initech.com", "email_opt_in": "yes"}, {"email": "gus@x.com"}],
            touch=Touch(
                consent_origin="import: list.csv",
                activity_kind="import",
                activity_properties={"consent_basis": "opted_in"},
            ),
        )
        lead_ingest_batch(
            organization_id=org.pk,
            rows=[{"email": "hal@initech.com", "email_opt_in": True}],
            touch=Touch(consent_origin="api: CRM"),
        )
        rows = {r.email: r for r in ConsentRecord.objects.all()}
    assert set(rows) == {"fay@initech.com", "hal@initech.com"}
    assert rows["fay@initech.com"].source == "import" and "opted_in" in rows["fay@initech.com"].text
    assert rows["hal@initech.com"].source == "api"


def test_unsubscribe_records_a_withdrawal(org, other_org):
    with tenant_scope(org):
        enrollment = EnrollmentFactory(sequence__organization=org)
        sent = EmailMessageFactory(enrollment=enrollment, status="sent", sent_at=timezone.now())
    token = tokens.make(tokens.UNSUBSCRIBE, organization_id=org.pk, message_id=sent.message_id)
    url = reverse("nurture_public:unsubscribe", kwargs={"token": token})
    Client().post(url, {"reason": "too_many"})
    Client().post(url, {"reason": "too_many"})  # idempotent
    with tenant_scope(org):
        (record,) = ConsentRecord.objects.all()
        assert (record.action, record.source) == ("withdrawn", "unsubscribe")
        assert record.email == sent.to_email and record.lead_id == sent.lead_id
        assert not Lead.objects.get(pk=sent.lead_id).email_opt_in
        assert AuditEvent.objects.filter(action="consent.withdrawn").count() == 1
    with tenant_scope(other_org):
        assert not ConsentRecord.objects.exists()


def test_form_settings_turn_double_opt_in_on_only_with_a_consent_text(org, other_org, admin_client):
    form = _form(org, name="Settings")
    url = reverse("leads:form_edit", args=[org.slug, form.pk])
    data = {
        "name": "Settings",
        "activity_kind": "form_submit",
        "submit_label": "Go",
        "success_message": "Thanks",
        "min_fill_seconds": 2,
        "double_opt_in": "on",
    }
    refused = admin_client.post(url, data)
    assert refused.status_code == 400 and "needs a consent text" in refused.content.decode()
    assert admin_client.post(url, {**data, "consent_text": TEXT}).status_code == 302
    with tenant_scope(org):
        form.refresh_from_db()
        assert form.double_opt_in and form.consent_text == TEXT


def test_admins_export_the_ledger_as_csv(org, other_org, admin_client, make_member, client_for):
    for organization, email in ((org, "ivy@initech.com"), (other_org, "globex@x.io")):
        consent.consent_record_batch(
            organization_id=organization.pk,
            entries=[consent.ConsentEntry(lead_id=None, email=email, text="=HYPERLINK(1)")],
            action="given",
            source="form",
        )
    url = reverse("privacy:consent_csv", kwargs={"org_slug": org.slug})
    response = admin_client.get(url)
    body = response.content.decode()
    assert response["Content-Type"].startswith("text/csv")
    assert "ivy@initech.com" in body and "globex@x.io" not in body
    assert "'=HYPERLINK(1)" in body  # a formula start is neutralized
    with tenant_scope(org):
        assert AuditEvent.objects.filter(action="consent.exported").count() == 1
    assert client_for(make_member(org, "marketer")).get(url).status_code == 403
