"""Right of access: everything held about a person, as JSON and as a zip of CSVs;
audited; every model that points at a lead is covered (export and erasure read
the same table)."""

import csv
import io
import json
import zipfile

import pytest
from django.apps import apps
from django.urls import reverse

from accounts.models import AuditEvent
from leadflow.core.tenancy import TenantModel, tenant_scope
from leads.models import Lead
from privacy.selectors import KINDS
from tests.privacy.test_erasure import EMAIL, person  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def _export(client, org, fmt, **target):
    url = reverse("privacy:export", kwargs={"org_slug": org.slug})
    return client.post(url, {"format": fmt, **target})


def test_json_export_holds_every_kind(org, other_org, admin_client, person):  # noqa: F811
    response = _export(admin_client, org, "json", email=EMAIL)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert {row["email"] for row in data["leads"]} == {EMAIL, "zoe@home.example"}  # merged too
    assert len(data["activities"]) == 2 and data["activities"][0]["properties"]
    assert len(data["form_submissions"]) == 2
    assert data["emails"][0]["to_email"] == EMAIL
    assert data["consent_ledger"][0]["text"] == "News"
    assert data["list_memberships"][0]["list_name"]
    assert data["qualification"][0]["need"] == "Zoe needs a CRM"
    assert data["merges"] and data["email_suppressions"]
    with tenant_scope(other_org):  # Globex's Zoe is not in Acme's answer
        theirs = Lead.objects.get(email=EMAIL).pk
    assert theirs not in {row["id"] for row in data["leads"]}
    with tenant_scope(org):
        (event,) = AuditEvent.objects.filter(action="privacy.access_exported")
        assert event.data["counts"]["leads"] == 2 and EMAIL not in event.subject


def test_csv_export_is_a_zip_with_one_csv_per_kind(org, other_org, admin_client, person):  # noqa: F811
    response = _export(admin_client, org, "csv", lead=person.pk)
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(archive.namelist())
    assert {"leads.csv", "activities.csv", "emails.csv", "consent_ledger.csv"} <= names
    leads = list(csv.DictReader(io.StringIO(archive.read("leads.csv").decode())))
    assert {row["email"] for row in leads} == {EMAIL, "zoe@home.example"}


def test_export_of_unknown_person_says_so_and_is_audited(org, other_org, admin_client):
    response = _export(admin_client, org, "json", email="nobody@initech.com")
    assert response.status_code == 302
    with tenant_scope(org):
        assert AuditEvent.objects.filter(action="privacy.access_unknown").count() == 1


def test_every_model_pointing_at_a_lead_is_exported_and_erased():
    """A new model that holds a lead's data must be added to privacy.selectors.KINDS
    (with what erasure does to it), or this fails."""
    covered = {kind.model for kind in KINDS}
    pointing = {
        model
        for model in apps.get_models()
        if issubclass(model, TenantModel)
        and model is not Lead
        and any(
            field.is_relation and field.related_model is Lead and field.concrete
            for field in model._meta.get_fields()
        )
    }
    assert pointing - covered == set()
    assert pointing  # the walk finds them (Activity at least)
