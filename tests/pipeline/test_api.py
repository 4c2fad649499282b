"""The pipeline API: POST /api/v1/leads/{id}/transitions and GET …/stage-history."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from leads.models import LeadStage
from pipeline.models import StageTransition
from pipeline.services import stage_transition
from tests.factories import LeadFactory, api_key_for
from tests.pipeline.support import fresh, history, pipeline_only  # noqa: F401


@pytest.fixture
def api(org):
    client = Client(headers={"Authorization": f"Bearer {api_key_for(org, name='CRM')}"})
    client.get("/api/v1/leads")  # the key's once-a-minute last_used_at write, out of the way
    return client


@pytest.fixture
def other_api(other_org):
    return Client(headers={"X-API-Key": api_key_for(other_org, name="Globex CRM")})


def move(client, lead_id, body):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(
        f"/api/v1/leads/{lead_id}/transitions", data, content_type="application/json"
    )


def error_of(response, status, code):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    return error


def transitions_of(org):
    with tenant_scope(org):
        return list(StageTransition.objects.values_list("lead_id", "to_stage"))


@pytest.mark.django_db
def test_integration_hands_a_lead_to_sales_and_it_is_recorded(api, org):
    lead = LeadFactory(organization=org)
    response = move(api, lead.pk, {"to": "mql", "reason": "  Booked a demo in our CRM "})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["lead_id"] == lead.pk
    assert body["stage"] == "mql"
    assert body["transition"] | {"id": 0, "occurred_at": ""} == {
        "id": 0,
        "occurred_at": "",
        "from_stage": "new",
        "to_stage": "mql",
        "actor_email": None,
        "rule": "api:CRM",
        "reason_code": "",
        "reason": "Booked a demo in our CRM",
    }
    with tenant_scope(org):
        assert fresh(lead).stage == LeadStage.MQL
        assert history(lead) == [("new", "mql")]


@pytest.mark.django_db
def test_recycle_with_a_reason_code(api, org):
    lead = LeadFactory(organization=org, stage="sal")
    response = move(api, lead.pk, {"to": "recycled", "reason_code": "not_now", "reason": "Q3"})
    assert response.status_code == 200, response.content
    assert response.json()["transition"]["reason_code"] == "not_now"
    with tenant_scope(org):
        assert fresh(lead).stage == LeadStage.RECYCLED


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("stage", "to", "says"),
    [
        ("new", "won", "cannot move from New to Won"),
        (
            "sal",
            "sql",
            "from Sales accepted to Sales qualified cannot be done by an API integration",
        ),
        ("opportunity", "won", "cannot be done by an API integration"),
    ],
)
def test_illegal_moves_are_refused_with_a_clear_message(api, org, stage, to, says):
    lead = LeadFactory(organization=org, stage=stage)
    error = error_of(move(api, lead.pk, {"to": to, "reason": "x"}), 400, "transition_not_allowed")
    assert says in error["message"]
    assert error["details"][0]["field"] == "to"
    with tenant_scope(org):
        assert fresh(lead).stage == stage
    assert transitions_of(org) == []


@pytest.mark.django_db
def test_the_message_names_the_possible_moves(api, org):
    lead = LeadFactory(organization=org, stage="new")
    error = error_of(move(api, lead.pk, {"to": "sal"}), 400, "transition_not_allowed")
    assert "an integration may move it to: mql." in error["message"]
    assert error["details"][0]["allowed"] == ["mql"]


@pytest.mark.django_db
def test_a_reason_is_required_where_a_person_would_need_one(api, org):
    lead = LeadFactory(organization=org)
    error = error_of(move(api, lead.pk, {"to": "mql", "reason": "   "}), 400, "reason_required")
    assert "reason" in error["message"]
    with tenant_scope(org):
        assert fresh(lead).stage == LeadStage.NEW
    assert transitions_of(org) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"to": "heaven"}, "invalid_request", "to"),
        ({}, "invalid_request", "to"),
        ({"to": "mql", "reason": "x", "actor": 1}, "invalid_request", "actor"),
        ({"to": "mql", "reason": "x", "reason_code": "Not Now!"}, "invalid_request", "reason_code"),
        ({"to": "mql", "reason": "x" * 2001}, "invalid_request", "reason"),
        ("{not json", "malformed_json", None),
        ('"mql"', "invalid_request", None),
    ],
)
def test_bad_bodies_are_400(api, org, body, code, field):
    lead = LeadFactory(organization=org)
    error = error_of(move(api, lead.pk, body), 400, code)
    if field:
        assert field in {d["field"] for d in error["details"]}
    assert transitions_of(org) == []


@pytest.mark.django_db
def test_an_oversized_body_is_413(api, org):
    lead = LeadFactory(organization=org)
    error_of(move(api, lead.pk, {"to": "mql", "reason": "x" * 20_000}), 413, "payload_too_large")


@pytest.mark.django_db
def test_a_merged_lead_cannot_be_moved(api, org):
    survivor = LeadFactory(organization=org)
    merged = LeadFactory(organization=org, merged_into=survivor)
    error_of(move(api, merged.pk, {"to": "mql", "reason": "x"}), 400, "lead_inactive")


@pytest.mark.django_db
def test_without_a_key_is_401(org):
    lead = LeadFactory(organization=org)
    error_of(move(Client(), lead.pk, {"to": "mql", "reason": "x"}), 401, "unauthorized")
    response = Client(headers={"X-API-Key": "lf_nope_nope"}).get(
        f"/api/v1/leads/{lead.pk}/stage-history"
    )
    error_of(response, 401, "unauthorized")


@pytest.mark.django_db
def test_another_orgs_lead_is_404_and_untouched(api, other_api, org, other_org):
    theirs = LeadFactory(organization=other_org)
    error_of(move(api, theirs.pk, {"to": "mql", "reason": "x"}), 404, "not_found")
    error_of(api.get(f"/api/v1/leads/{theirs.pk}/stage-history"), 404, "not_found")
    error_of(move(api, 2**62, {"to": "mql", "reason": "x"}), 404, "not_found")
    with tenant_scope(other_org):
        assert fresh(theirs).stage == LeadStage.NEW
    assert transitions_of(other_org) == []
    # …while their own key moves it.
    assert move(other_api, theirs.pk, {"to": "mql", "reason": "x"}).status_code == 200


@pytest.mark.django_db
def test_stage_history_oldest_first_with_who_and_why(api, org, admin, django_assert_num_queries):
    lead = LeadFactory(organization=org)
    start = timezone.now() - timedelta(days=3)
    with tenant_scope(org):
        # Recorded out of order on purpose: the history is ordered by when, not by id.
        stage_transition(lead=lead, to="mql", rule="score", now=start + timedelta(hours=1))
        stage_transition(lead=lead, to="sal", actor=admin, now=start + timedelta(hours=2))
        stage_transition(
            lead=lead,
            to="recycled",
            actor=admin,
            reason_code="not_now",
            reason="Next year",
            now=start + timedelta(hours=3),
        )
        StageTransition.objects.create(
            organization=org,
            lead=lead,
            from_stage="",
            to_stage="new",
            occurred_at=start,
            rule="capture",
        )
    url = f"/api/v1/leads/{lead.pk}/stage-history"
    with django_assert_num_queries(3):  # the key, the lead, its history
        response = api.get(url)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["stage"] == "recycled"
    got = [(i["from_stage"], i["to_stage"], i["actor_email"], i["rule"], i["reason"])
           for i in body["items"]]  # fmt: skip
    assert got == [
        ("", "new", None, "capture", ""),
        ("new", "mql", None, "score", ""),
        ("mql", "sal", "admin@acme.example", "manual", ""),
        ("sal", "recycled", "admin@acme.example", "manual", "Next year"),
    ]
    assert body["items"][-1]["reason_code"] == "not_now"
    # Constant queries whatever the history's length.
    with tenant_scope(org):
        stage_transition(lead=lead, to="mql", actor=admin, reason="Back in market")
        stage_transition(lead=lead, to="sal", actor=admin)
    with django_assert_num_queries(3):
        assert len(api.get(url).json()["items"]) == 6


@pytest.mark.django_db
def test_the_api_is_in_the_openapi_document(org):
    paths = Client().get("/api/v1/openapi.json").json()["paths"]
    assert "post" in paths["/api/v1/leads/{lead_id}/transitions"]
    assert "get" in paths["/api/v1/leads/{lead_id}/stage-history"]
