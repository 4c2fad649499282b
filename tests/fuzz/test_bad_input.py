"""One small test per bad input of the hardening issue that used to answer 500.

Each must get a clear 4xx (a JSON error body in the API, a form error or a
400 page elsewhere) and store nothing partial. The fuzzers beside this module
cover the classes; these pin the cases that were found.
"""

import json
from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from leadflow.core.badinput import UtcDateTimeField
from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, FormSubmission, Lead
from nurture.models import EmailTemplate, Sequence
from pipeline.models import RoutingRule
from tests.factories import (
    CaptureFormFactory,
    CaptureFormFieldFactory,
    LeadFactory,
    NurtureListFactory,
    TeamFactory,
    api_key_for,
)

pytestmark = pytest.mark.django_db

LEADS = "/api/v1/leads"


@pytest.fixture
def api(org, other_org):
    return Client(headers={"Authorization": f"Bearer {api_key_for(org)}"})


def assert_json_error(response, status=400):
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] and error["message"]
    return error


def counts(org):
    with tenant_scope(org):
        return Lead.objects.count(), FormSubmission.objects.count()


@pytest.mark.parametrize("body", ["null", "42", '"lead"', "true", "[]"])
def test_api_lead_body_that_is_not_an_object_is_400_and_stores_nothing(api, org, body):
    error = assert_json_error(api.post(LEADS, body, content_type="application/json"))
    assert "object" in error["message"]
    assert counts(org) == (0, 0)


@pytest.mark.parametrize("size", [2**31, -1, 2**63, 10**40])
def test_api_company_size_outside_the_column_is_400_and_stores_nothing(api, org, size):
    body = {"email": "big@acme-corp.com", "company_size": size}
    error = assert_json_error(api.post(LEADS, body, content_type="application/json"))
    assert [d["field"] for d in error["details"]] == ["company_size"]
    assert counts(org) == (0, 0)  # and so nothing for the sweeper to retry


def test_api_company_size_at_the_column_limit_is_stored(api, org):
    body = {"email": "max@acme-corp.com", "company_size": 2**31 - 1}
    response = api.post(LEADS, body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["lead"]["company_size"] == 2**31 - 1


@pytest.mark.parametrize("query", ["q=%00", "q=a%00b", "email=%00", "cursor=%00", "q%00=1"])
def test_api_nul_in_a_query_parameter_is_400(api, query):
    error = assert_json_error(api.get(f"{LEADS}?{query}"))
    assert error["code"] == "invalid_text"


def test_nurture_list_search_with_nul_is_400(org, other_org, make_member, client_for):
    client = client_for(make_member(org))
    with tenant_scope(org):
        nurture_list = NurtureListFactory(organization=org)
    response = client.get(f"/o/{org.slug}/nurture/lists/{nurture_list.pk}/search/?q=%00")
    assert response.status_code == 400
    assert b"NUL" in response.content


def test_lead_list_page_with_nul_in_any_parameter_is_400(org, other_org, make_member, client_for):
    client = client_for(make_member(org))
    assert client.get(f"/o/{org.slug}/leads/?q=%00").status_code == 400
    assert client.get(f"/o/{org.slug}/leads/?q=fine").status_code == 200


def test_api_datetime_filter_with_an_offset_postgres_cannot_store(api, org):
    with tenant_scope(org):
        LeadFactory(organization=org)
    response = api.get(f"{LEADS}?created_after=0357-05-20T21:56:41-18:36")
    assert response.status_code == 200, response.content  # valid RFC 3339: compared in UTC
    assert len(response.json()["items"]) == 1
    response = api.get(f"{LEADS}?created_before=0357-05-20T21:56:41-18:36")
    assert response.json()["items"] == []


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"])
def test_api_datetime_filter_outside_the_calendar_in_utc_is_400(api, value):
    response = api.get(f"{LEADS}?updated_after={value.replace('+', '%2B')}")
    error = assert_json_error(response)
    assert error["details"][0]["field"] == "updated_after"


@pytest.mark.parametrize("value", ["0.5", "1700000000", "true"])
def test_api_datetime_filters_are_strict(api, value):
    error = assert_json_error(api.get(f"{LEADS}?updated_after={value}"))
    assert error["details"][0]["field"] == "updated_after"


def test_api_booleans_are_strict(api, org):
    with tenant_scope(org):
        lead = LeadFactory(organization=org)
    body = {
        "activities": [{"lead": {"id": lead.pk}, "kind": "page_view"}],
        "create_missing_leads": 0,
    }
    response = api.post("/api/v1/activities", body, content_type="application/json")
    assert assert_json_error(response)["details"][0]["field"] == "create_missing_leads"
    response = api.post(
        LEADS, {"email": "a@acme-corp.com", "email_opt_in": 1}, content_type="application/json"
    )
    assert assert_json_error(response)["details"][0]["field"] == "email_opt_in"
    assert counts(org) == (1, 0)


@pytest.fixture
def author(org, other_org, make_member, client_for):
    return client_for(make_member(org))


def _nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [200, 5_000])
def test_api_deeply_nested_json_is_400_and_stores_nothing(api, org, depth):
    body = '{"email": "deep@acme-corp.com", "custom": ' + _nested(depth) + "}"
    error = assert_json_error(api.post(LEADS, body, content_type="application/json"))
    assert error["code"] == "malformed_json"
    assert counts(org) == (0, 0)
    with tenant_scope(org):
        lead = LeadFactory(organization=org)
    item = f'{{"lead": {{"id": {lead.pk}}}, "kind": "page_view", "properties": {_nested(depth)}}}'
    body = '{"activities": [' + item + "]}"
    response = api.post("/api/v1/activities", body, content_type="application/json")
    assert assert_json_error(response)["code"] == "malformed_json"


@pytest.mark.parametrize("depth", [200, 5_000])
def test_hosted_form_deeply_nested_json_is_400(client, org, other_org, depth):
    with tenant_scope(org):
        form = CaptureFormFactory(organization=org)
        CaptureFormFieldFactory(form=form, key="email", field_type="email", maps_to="email")
    body = '{"email": "deep@acme-corp.com", "x": ' + _nested(depth) + "}"
    response = client.post(f"/f/{form.key}/", body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["ok"] is False
    with tenant_scope(org):
        assert Lead.objects.count() == 0
        # The unreadable post is kept, complete and final, for the form's owner.
        [submission] = FormSubmission.objects.all()
        assert submission.outcome == "invalid" and submission.processed_at is not None


@pytest.mark.parametrize("part", ["subject", "body_html", "body_text"])
def test_email_template_with_5000_nested_ifs_is_a_form_error(author, org, part):
    client = author
    deep = "{% if first_name %}" * 5_000 + "x" + "{% endif %}" * 5_000
    data = {"name": "Deep", "subject": "Hello", "body_html": "<p>Hi</p>", "body_text": ""}
    data[part] = deep
    response = client.post(f"/o/{org.slug}/nurture/templates/new/", data)
    assert response.status_code == 400  # the editor again, with the error next to the field
    assert "nested too deeply" in response.content.decode()
    with tenant_scope(org):
        assert not EmailTemplate.objects.exists()


def test_email_template_preview_with_5000_nested_ifs_is_400(author, org):
    client = author
    deep = "{% if first_name %}" * 5_000 + "x" + "{% endif %}" * 5_000
    response = client.post(
        f"/o/{org.slug}/nurture/templates/preview/", {"subject": "Hi", "body_html": deep}
    )
    assert response.status_code in (200, 400)
    assert "nested too deeply" in response.content.decode()


# --- The OpenAPI document says what the API does ------------------------------------


@pytest.fixture
def openapi(db):
    return Client().get("/api/v1/openapi.json").json()


def test_api_non_integer_lead_id_is_a_documented_400(api, openapi):
    for path in ("/api/v1/leads/abc", "/api/v1/leads/1.5/stage-history"):
        assert_json_error(api.get(path))
    for path in ("/api/v1/leads/{lead_id}", "/api/v1/leads/{lead_id}/stage-history"):
        assert "400" in openapi["paths"][path]["get"]["responses"]


def test_every_api_operation_declares_its_error_responses(openapi):
    error_ref = "#/components/schemas/ErrorOut"
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            if "security" not in operation:  # the public health probe
                continue
            expected = {"400", "401", "404", "429", "503"}
            if method == "post":
                expected.add("413")
            responses = operation["responses"]
            assert expected <= set(responses), (method, path, sorted(responses))
            for status in expected:
                schema = responses[status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": error_ref}, (method, path, status)


# --- Found by the page fuzzer (tests/fuzz/test_pages.py) -----------------------------


@pytest.mark.parametrize(
    "target", ["review_list", "x:y", "https://evil.example/", "//evil.example/"]
)
def test_review_action_next_that_is_not_a_local_path_is_ignored(author, org, target):
    with tenant_scope(org):
        lead = LeadFactory(organization=org)
    response = author.post(f"/o/{org.slug}/leads/{lead.pk}/discard/", {"next": target})
    assert response.status_code == 302
    assert response["Location"] == f"/o/{org.slug}/leads/review/"
    response = author.post(
        f"/o/{org.slug}/leads/{lead.pk}/approve/", {"next": f"/o/{org.slug}/leads/"}
    )
    assert response["Location"] == f"/o/{org.slug}/leads/"


def test_routing_condition_value_with_nul_is_a_form_error(author, org):
    with tenant_scope(org):
        team = TeamFactory(organization=org)
    data = {
        "name": "EMEA", "priority": "10", "is_active": "on", "target_team": team.pk,
        "target_rep": "", "method": "round_robin",
        "cond-TOTAL_FORMS": "1", "cond-INITIAL_FORMS": "0",
        "cond-0-field": "country", "cond-0-operator": "in", "cond-0-value": "de\x00",
    }  # fmt: skip
    response = author.post(f"/o/{org.slug}/pipeline/settings/rules/new/", data)
    assert response.status_code == 400
    with tenant_scope(org):
        assert not RoutingRule.objects.exists()


@pytest.mark.parametrize("bad_id", [str(2**63), str(2**70), "-" + str(2**63 + 1)])
def test_sequence_trigger_list_id_beyond_the_column_is_a_form_error(author, org, bad_id):
    data = {"name": "Welcome", "trigger_lists": [bad_id], "exit_on": [], "window_days": []}
    response = author.post(f"/o/{org.slug}/nurture/sequences/new/", data)
    assert response.status_code in (200, 400)
    assert "trigger_lists" in response.context["form"].errors
    with tenant_scope(org):
        assert not Sequence.objects.exists()


def test_touch_time_with_an_offset_postgres_cannot_store_is_kept_in_utc(author, org):
    with tenant_scope(org):
        lead = LeadFactory(organization=org)
    sent = "2024-05-20T21:56:41-18:36"
    response = author.post(
        f"/o/{org.slug}/pipeline/leads/{lead.pk}/touch/", {"kind": "call", "occurred_at": sent}
    )
    assert response.status_code == 302, response.content[:300]
    with tenant_scope(org):
        touch = Activity.objects.get(lead=lead, kind="call")
    assert touch.occurred_at == datetime.fromisoformat(sent)


def test_form_date_times_are_converted_to_utc_or_refused():
    field = UtcDateTimeField()
    assert field.clean("0357-05-20T21:56:41-18:36").utcoffset() == timedelta(0)
    with pytest.raises(ValidationError):
        field.clean("9999-12-31T23:59:59-23:59")


def test_hosted_form_nul_in_a_choice_is_dropped_not_a_500(client, org, other_org):
    with tenant_scope(org):
        form = CaptureFormFactory(organization=org)
        CaptureFormFieldFactory(form=form, key="email", field_type="email", maps_to="email")
        CaptureFormFieldFactory(
            form=form, key="size", field_type="select", maps_to="custom", options=["1-10"]
        )
    # The refused choice is echoed in the error message kept with the submission.
    response = client.post(f"/f/{form.key}/", {"email": "a@acme-corp.com", "size": "x\x00y"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    with tenant_scope(org):
        [submission] = FormSubmission.objects.all()
    assert "\x00" not in json.dumps(submission.outcome_reasons) + json.dumps(submission.payload)
