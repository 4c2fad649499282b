"""Outcomes from outside the live pipeline: a CSV import's outcome column and
the API's won/lost call, recorded as system transitions; idempotent; per tenant."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from leads.importing.values import outcome_value
from leads.models import Lead, LeadStage
from pipeline.models import OpportunityStatus, StageTransition
from pipeline.services.outcomes import IMPORTED_OUTCOME, outcomes_record
from tests.factories import LeadFactory, OpportunityFactory, api_key_for
from tests.leads.test_import_jobs import start, upload

pytestmark = pytest.mark.django_db

CSV = (
    b"Email,Converted,Closed on\n"
    b"ann@northwind.com,1,2025-03-01\n"
    b"bob@globex-corp.com,0,2025-04-02T10:00:00+00:00\n"
    b"cy@initech.com,,\n"
    b"dee@umbrella-labs.com,yes,not a date\n"
)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.mark.parametrize(
    "value, outcome",
    [("1", "won"), ("Converted", "won"), ("YES", "won"), ("Closed Won", "won"),
     ("0", "lost"), ("no", "lost"), ("Lost", "lost"), ("", None), ("maybe", None)],
)  # fmt: skip
def test_outcome_values(value, outcome):
    assert outcome_value(value) == outcome


def test_an_imported_outcome_column_becomes_stage_history(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    job = upload(org, admin, CSV)
    mapping = {"Email": "email", "Converted": "outcome", "Closed on": "outcome_date"}
    job = start(job, django_capture_on_commit_callbacks, mapping=mapping)
    assert job.created_count == 4
    with tenant_scope(org):
        stages = dict(Lead.objects.values_list("email", "stage"))
        assert stages == {
            "ann@northwind.com": LeadStage.WON, "bob@globex-corp.com": LeadStage.LOST,
            "cy@initech.com": LeadStage.NEW, "dee@umbrella-labs.com": LeadStage.WON,
        }  # fmt: skip
        moves = {t.lead.email: t for t in StageTransition.objects.select_related("lead")}
        assert set(moves) == {"ann@northwind.com", "bob@globex-corp.com", "dee@umbrella-labs.com"}
        ann = moves["ann@northwind.com"]
        assert (ann.rule, ann.reason, ann.actor_id) == ("import", IMPORTED_OUTCOME, None)
        assert ann.occurred_at == dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
        assert moves["bob@globex-corp.com"].occurred_at == dt.datetime(
            2025, 4, 2, 10, tzinfo=dt.UTC
        )
        # The outcome is history, not a custom attribute.
        assert "converted" not in Lead.objects.get(email="ann@northwind.com").custom
        # Recording the same outcomes again changes nothing.
        ann_id = Lead.objects.get(email="ann@northwind.com").pk
        again = outcomes_record(
            organization_id=org.pk, outcomes=[(ann_id, "won", None)], rule="import"
        )
        assert again == []
    with tenant_scope(other_org):
        assert not StageTransition.objects.exists()


def test_the_api_records_won_with_an_amount_and_lost_with_a_reason(org, other_org):
    api = Client(headers={"Authorization": f"Bearer {api_key_for(org, name='CRM')}"})
    with tenant_scope(org):
        won = LeadFactory(organization=org, stage=LeadStage.OPPORTUNITY)
        deal = OpportunityFactory(lead=won, organization=org)
        lost = LeadFactory(organization=org)
    with tenant_scope(other_org):
        foreign = LeadFactory(organization=other_org)

    def post(lead_id, body):
        return api.post(
            f"/api/v1/leads/{lead_id}/outcome", json.dumps(body), content_type="application/json"
        )

    response = post(won.pk, {"outcome": "won", "amount": "1200.50"})
    assert response.status_code == 200, response.content
    assert response.json() == {"lead_id": won.pk, "stage": "won", "recorded": True}
    assert post(won.pk, {"outcome": "won"}).json()["recorded"] is False
    refused = post(lost.pk, {"outcome": "lost"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "reason_required"
    assert post(lost.pk, {"outcome": "lost", "reason": "Chose a competitor"}).status_code == 200
    assert post(foreign.pk, {"outcome": "won"}).status_code == 404
    with tenant_scope(org):
        deal.refresh_from_db()
        assert (deal.status, deal.amount) == (OpportunityStatus.WON, Decimal("1200.50"))
        move = StageTransition.objects.get(lead=lost)
        assert (move.to_stage, move.rule, move.reason) == ("lost", "api:CRM", "Chose a competitor")
    with tenant_scope(other_org):
        assert Lead.objects.get(pk=foreign.pk).stage == LeadStage.NEW


def test_the_lead_list_bulk_action_marks_won_and_lost(
    org, other_org, admin_client, marketer, client_for
):
    with tenant_scope(org):
        a, b, c = (LeadFactory(organization=org) for _ in range(3))
    with tenant_scope(other_org):
        foreign = LeadFactory(organization=other_org)
    url = reverse("leads:lead_bulk", kwargs={"org_slug": org.slug})
    listing = admin_client.get(reverse("leads:lead_list", kwargs={"org_slug": org.slug}))
    assert b'value="mark_won"' in listing.content
    response = admin_client.post(
        url, {"action": "mark_won", "lead_ids": [a.pk, b.pk, foreign.pk]}, follow=True
    )
    assert b"2 leads marked won." in response.content
    admin_client.post(url, {"action": "mark_lost", "lead_ids": [c.pk]})
    with tenant_scope(org):
        assert dict(Lead.objects.values_list("pk", "stage")) == {
            a.pk: LeadStage.WON, b.pk: LeadStage.WON, c.pk: LeadStage.LOST,
        }  # fmt: skip
        move = StageTransition.objects.get(lead=c)
        assert move.rule == "bulk" and move.reason.startswith("Marked lost in bulk by ")
    with tenant_scope(other_org):
        assert Lead.objects.get(pk=foreign.pk).stage == LeadStage.NEW
    # A marketer may not record outcomes, and the request does nothing else instead.
    with tenant_scope(org):
        d = LeadFactory(organization=org)
    refused = client_for(marketer).post(url, {"action": "mark_won", "lead_ids": [d.pk]})
    assert refused.status_code == 302
    with tenant_scope(org):
        d.refresh_from_db()
        assert d.stage == LeadStage.NEW and d.quality != "junk"
        assert not StageTransition.objects.filter(lead=d).exists()
