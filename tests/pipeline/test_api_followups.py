"""The tasks API (/api/v1/tasks): list with filters and cursor, create, update,
complete; past due dates and a bad assignee are 400s, another organization's
lead, deal or task a 404; Idempotency-Key replays a create."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from leadflow.core.tenancy import tenant_scope
from pipeline.models import FollowUp
from tests.factories import (
    FollowUpFactory,
    LeadFactory,
    MembershipFactory,
    OpportunityFactory,
    api_key_for,
)
from tests.pipeline.support import mql_for, pipeline_only, rep

__all__ = ["pipeline_only"]

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)


@pytest.fixture
def api(org):
    client = Client(headers={"Authorization": f"Bearer {api_key_for(org, name='CRM')}"})
    client.get("/api/v1/leads")  # the key's once-a-minute last_used_at write, out of the way
    return client


def send(client, method, path, body=None, **headers):
    return getattr(client, method)(
        f"/api/v1/tasks{path}",
        json.dumps(body) if body is not None else "",
        content_type="application/json",
        headers=headers,
    )


def error_of(response, status, code):
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    return response.json()["error"]


def iso(when) -> str:
    return when.isoformat()


def test_create_update_complete_and_list(api, org, sales_rep):
    with tenant_scope(org):
        lead = mql_for(sales_rep)
    due = timezone.now() + HOUR
    response = send(api, "post", "", {"title": "Call back", "due_at": iso(due), "lead_id": lead.pk})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body | {"id": 0, "created_at": ""} == {
        "id": 0,
        "kind": "call",
        "title": "Call back",
        "notes": "",
        "due_at": body["due_at"],
        "lead_id": lead.pk,
        "opportunity_id": None,
        "assignee_id": sales_rep.pk,  # the lead's owner
        "created_at": "",
        "done_at": None,
        "status": "open",
        "overdue": False,
    }
    task_id = body["id"]
    response = send(api, "patch", f"/{task_id}", {"kind": "meeting", "notes": "Bring the deck"})
    assert response.status_code == 200 and response.json()["kind"] == "meeting"
    response = send(api, "post", f"/{task_id}/complete")
    assert response.status_code == 200 and response.json()["status"] == "done"
    assert send(api, "get", "?status=open").json()["items"] == []
    listed = send(api, "get", f"?status=done&lead_id={lead.pk}").json()
    assert [t["id"] for t in listed["items"]] == [task_id]


def test_list_filters_and_cursor(api, org, other_org, sales_rep):
    now = timezone.now()
    with tenant_scope(org):
        lead, other = mql_for(sales_rep), mql_for(sales_rep)
        deal = OpportunityFactory(lead=lead)
        ids = [
            FollowUpFactory(lead=lead, assignee=sales_rep, due_at=now + i * HOUR).pk
            for i in range(1, 4)
        ]
        on_deal = FollowUpFactory(
            lead=None, opportunity=deal, organization=org, assignee=sales_rep, due_at=now
        ).pk
        FollowUpFactory(lead=other, assignee=sales_rep, due_at=now + 10 * HOUR)
    with tenant_scope(other_org):
        FollowUpFactory(lead__organization=other_org, due_at=now + HOUR)
    first = send(api, "get", f"?lead_id={lead.pk}&limit=2").json()
    assert [t["id"] for t in first["items"]] == [on_deal, ids[0]] and first["has_more"]
    rest = send(api, "get", f"?lead_id={lead.pk}&limit=2&cursor={first['next_cursor']}").json()
    assert [t["id"] for t in rest["items"]] == ids[1:] and not rest["has_more"]
    window = f"?due_after={iso(now + HOUR / 2)}&due_before={iso(now + 2.5 * HOUR)}"
    assert [t["id"] for t in send(api, "get", window.replace("+", "%2B")).json()["items"]] == ids[
        :2
    ]
    assert len(send(api, "get", "?status=all").json()["items"]) == 5  # not the other tenant's
    error_of(send(api, "get", "?cursor=nope"), 400, "invalid_cursor")
    error_of(send(api, "get", "?colour=red"), 400, "unknown_parameter")


def test_bad_input_is_refused(api, org, other_org, sales_rep):
    with tenant_scope(org):
        lead = mql_for(sales_rep)
        marketer = MembershipFactory(organization=org, role=Role.MARKETER)
    with tenant_scope(other_org):
        foreign_lead = LeadFactory(organization=other_org)
        foreign_deal = OpportunityFactory(lead__organization=other_org)
        foreign_rep = rep(other_org)
        foreign_task = FollowUpFactory(lead=foreign_lead)
    soon, past = iso(timezone.now() + HOUR), iso(timezone.now() - HOUR)
    error = error_of(
        send(api, "post", "", {"title": "x", "due_at": past, "lead_id": lead.pk}),
        400,
        "task_invalid",
    )
    assert error["details"][0]["field"] == "due_at"
    for assignee in (foreign_rep.pk, marketer.pk):
        body = {"title": "x", "due_at": soon, "lead_id": lead.pk, "assignee_id": assignee}
        error = error_of(send(api, "post", "", body), 400, "task_invalid")
        assert error["details"][0]["field"] == "assignee_id"
    error_of(send(api, "post", "", {"title": "x", "due_at": soon}), 400, "task_invalid")
    both = {"title": "x", "due_at": soon, "lead_id": lead.pk, "opportunity_id": 1}
    error_of(send(api, "post", "", both), 400, "task_invalid")
    error_of(send(api, "post", "", {"title": "", "due_at": soon}), 400, "invalid_request")
    for subject in ({"lead_id": foreign_lead.pk}, {"opportunity_id": foreign_deal.pk}):
        response = send(api, "post", "", {"title": "x", "due_at": soon, **subject})
        assert response.status_code == 404, response.content
    assert send(api, "patch", f"/{foreign_task.pk}", {"title": "x"}).status_code == 404
    assert send(api, "post", f"/{foreign_task.pk}/complete").status_code == 404
    assert send(api, "post", f"/{2**70}/complete").status_code == 404
    with tenant_scope(org):
        assert not FollowUp.objects.exists()
    with tenant_scope(other_org):
        assert FollowUp.objects.get().done_at is None


def test_idempotency_key_replays_a_create(api, org, sales_rep):
    with tenant_scope(org):
        lead = mql_for(sales_rep)
    body = {"title": "Call", "due_at": iso(timezone.now() + HOUR), "lead_id": lead.pk}
    first = send(api, "post", "", body, **{"Idempotency-Key": "task-1"})
    again = send(api, "post", "", body, **{"Idempotency-Key": "task-1"})
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    with tenant_scope(org):
        assert FollowUp.objects.count() == 1
