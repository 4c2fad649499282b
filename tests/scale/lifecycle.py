"""The core capture → score → route path, set up and checked the same way by the
scaling tests (PgBouncer, queue groups): a hosted form and the JSON API bring in
a VP, whose title rule lifts them over the MQL threshold, and routing hands them
to the one rep of the default team."""

from __future__ import annotations

from django.test import Client

from leadflow.core.tenancy import tenant_scope
from leads.models import Lead
from pipeline.models import Assignment
from scoring.models import ScoringSettings
from tests.factories import (
    CaptureFormFactory,
    CaptureFormFieldFactory,
    ScoringRuleFactory,
    TeamFactory,
    TeamMemberFactory,
    api_key_for,
)

API_URL = "/api/v1/leads"


def set_up_path(organization) -> dict:
    """A form, an API key, a 60-point title rule, threshold 50, one default rep."""
    with tenant_scope(organization):
        form = CaptureFormFactory(organization=organization, name="Demo request")
        CaptureFormFieldFactory(
            form=form, key="email", field_type="email", maps_to="email", required=True
        )
        CaptureFormFieldFactory(form=form, key="title", label="Job title", maps_to="title")
        ScoringRuleFactory(organization=organization, points=60, value="vp")
        ScoringSettings.objects.update_or_create(
            organization=organization, defaults={"mql_threshold": 50}
        )
        team = TeamFactory(organization=organization, is_default=True)
        seat = TeamMemberFactory(team=team)
    return {"form": form, "key": api_key_for(organization), "rep_id": seat.membership_id}


def submit_form(form, email: str, title: str = "VP Sales"):
    response = Client().post(f"/f/{form.key}/", {"email": email, "title": title})
    assert response.status_code in (200, 302), response.content[:300]
    return response


def create_by_api(key: str, email: str, title: str = "VP Marketing"):
    response = Client(headers={"Authorization": f"Bearer {key}"}).post(
        API_URL, {"email": email, "title": title}, content_type="application/json"
    )
    assert response.status_code in (200, 201), response.content[:300]
    return response


def routed(organization, email: str) -> dict | None:
    """The lead's score, stage and current rep once it is routed, else None."""
    with tenant_scope(organization):
        lead = Lead.objects.filter(email=email).first()
        if lead is None:
            return None
        rep_id = (
            Assignment.objects.filter(lead=lead, is_current=True)
            .values_list("membership_id", flat=True)
            .first()
        )
        if rep_id is None:
            return None
        return {"score": lead.score, "stage": lead.stage, "rep_id": rep_id, "owner": lead.owner_id}
