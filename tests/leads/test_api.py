"""The JSON API: API-key auth, the tenant scope, lead upsert, error shapes, limits."""

import json

import pytest
from django.test import Client, override_settings
from django_scopes import ScopeError, get_scope

from accounts.apikeys import apikey_revoke
from accounts.models import ApiKey
from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, FormSubmission, Lead, SubmissionChannel
from tests.factories import CampaignFactory, LeadFactory, api_key_for

URL = "/api/v1/leads"


@pytest.fixture
def key(org):
    return api_key_for(org, name="Website")


@pytest.fixture
def api(key):
    return Client(headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def other_api(other_org):
    return Client(headers={"Authorization": f"Bearer {api_key_for(other_org)}"})


def post(client, data, url=URL, **extra):
    body = data if isinstance(data, str | bytes) else json.dumps(data)
    return client.post(url, body, content_type="application/json", **extra)


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    return body["error"]


def leads_of(org):
    with tenant_scope(org):
        return list(Lead.objects.order_by("pk"))


def submissions_of(org):
    with tenant_scope(org):
        return list(FormSubmission.objects.order_by("pk"))


# --- Authentication ---------------------------------------------------------------


@pytest.mark.django_db
class TestAuthentication:
    def test_missing_key_is_401_with_a_hint(self, org):
        error = assert_error(Client().get(URL), 401, "unauthorized")
        assert "X-API-Key" in error["message"]

    @pytest.mark.parametrize(
        "header",
        [
            "Bearer nonsense",
            "Bearer lf_",
            "Bearer lf__secret",
            "Bearer xx_abc_def",
            "Basic dXNlcjpwYXNz",
            "Bearer",
        ],
    )
    def test_malformed_key_is_401(self, org, header):
        response = Client(headers={"Authorization": header}).get(URL)
        assert_error(response, 401, "unauthorized")
        assert response["WWW-Authenticate"] == "Bearer"

    def test_wrong_secret_is_401(self, key):
        prefix = key.split("_")[1]
        forged = f"lf_{prefix}_{'A' * 43}"
        assert_error(Client(headers={"X-API-Key": forged}).get(URL), 401, "unauthorized")

    def test_revoked_key_is_401_immediately(self, api, key):
        assert api.get(URL).status_code == 200
        apikey_revoke(apikey=ApiKey.objects.get(prefix=key.split("_")[1]))
        error = assert_error(api.get(URL), 401, "unauthorized")
        assert "revoked" in error["message"]

    def test_valid_key_by_bearer_or_header(self, key):
        assert Client(headers={"Authorization": f"Bearer {key}"}).get(URL).status_code == 200
        assert Client(headers={"X-API-Key": key}).get(URL).status_code == 200

    def test_csrf_does_not_apply_to_key_auth(self, key):
        client = Client(enforce_csrf_checks=True, headers={"X-API-Key": key})
        assert post(client, {"email": "ada@lovelace.io"}).status_code == 201

    def test_health_needs_no_key(self, db):
        assert Client().get("/api/v1/health").json() == {"status": "ok"}


@pytest.mark.django_db
def test_scope_is_active_in_the_handler_and_closed_afterwards(api, org, monkeypatch):
    seen = {}
    import leads.api as leads_api

    real = leads_api._filtered_leads

    def spy(filters):
        seen.update(get_scope())
        return real(filters)

    monkeypatch.setattr(leads_api, "_filtered_leads", spy)
    assert api.get(URL).status_code == 200
    assert seen["organization"] == org.pk
    assert not get_scope().get("_enabled")
    with pytest.raises(ScopeError):
        Lead.objects.count()


# A private cache: other test processes clearing the shared one can't reset the count.
PRIVATE_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.mark.django_db
@override_settings(LEADFLOW_API_RATE_LIMIT="3/m", CACHES=PRIVATE_CACHE)
def test_rate_limit_per_key_answers_429_with_retry_after(api, other_api):
    for _ in range(3):
        response = api.get(URL)
        assert response.status_code == 200
    assert response["X-RateLimit-Remaining"] == "0"
    response = api.get(URL)
    error = assert_error(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "Retry after" in error["message"]
    # The limit is per key: another key is unaffected.
    assert other_api.get(URL).status_code == 200


# --- Lead upsert -----------------------------------------------------------------------


@pytest.mark.django_db
class TestLeadUpsert:
    def test_create_then_merge_case_insensitively(self, api, org, other_org):
        response = post(api, {"email": "Ada@Lovelace.io", "first_name": "ada"})
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["outcome"] == "created" and body["created"] is True
        assert body["lead"]["email"] == "ada@lovelace.io"
        assert body["lead"]["first_name"] == "Ada"
        lead_id = body["lead"]["id"]

        response = post(api, {"email": "ADA@LOVELACE.IO", "title": "Analyst"})
        assert response.status_code == 200
        body = response.json()
        assert body["outcome"] == "merged" and body["created"] is False
        assert body["lead"]["id"] == lead_id
        assert body["lead"]["title"] == "Analyst"
        assert body["lead"]["first_name"] == "Ada"  # kept: empty values don't overwrite
        assert [lead.pk for lead in leads_of(org)] == [lead_id]
        assert leads_of(other_org) == []

    def test_external_id_is_an_identity(self, api, org):
        first = post(api, {"external_id": "crm-42", "first_name": "Grace"})
        assert first.status_code == 201
        second = post(api, {"external_id": "crm-42", "email": "grace@hopper.dev"})
        assert second.status_code == 200
        assert second.json()["lead"]["id"] == first.json()["lead"]["id"]
        assert second.json()["lead"]["email"] == "grace@hopper.dev"

    def test_raw_body_is_stored_first_with_its_outcome(self, api, org):
        payload = {"email": "ann@initech.com", "custom": {"plan": "pro"}}
        body = post(api, payload).json()
        [submission] = submissions_of(org)
        assert submission.channel == SubmissionChannel.API
        assert submission.form_id is None
        assert submission.payload == payload
        assert submission.outcome == "created"
        assert submission.lead_id == body["lead"]["id"] == body["lead"]["id"]
        assert body["submission_id"] == submission.pk

    def test_each_submission_records_its_outcome_lead_and_activity(self, api, org, other_api):
        """Created, junk and merged alike (on PostgreSQL a new lead, its activity
        and the outcome are one statement; a taken email merges the usual way)."""
        payloads = [
            {"email": "ann@initech.com", "activity_kind": "demo_request"},
            {"email": "test@test.com", "activity_kind": "webinar"},
            {"email": "ann@initech.com", "title": "CTO", "activity_kind": "webinar"},
        ]
        bodies = [post(api, payload).json() for payload in payloads]
        assert [b["outcome"] for b in bodies] == ["created", "junk", "merged"]
        assert post(other_api, payloads[0]).json()["outcome"] == "created"
        submissions = submissions_of(org)
        assert [s.outcome for s in submissions] == ["created", "junk", "merged"]
        assert [s.lead_id for s in submissions] == [b["lead"]["id"] for b in bodies]
        assert [s.outcome_reasons for s in submissions] == [b["reasons"] for b in bodies]
        assert submissions[1].outcome_reasons  # junk says why
        assert all(s.processed_at and s.attempts == 1 for s in submissions)
        with tenant_scope(org):
            activities = Activity.objects.order_by("pk").values_list(
                "lead_id", "kind", "properties__submission_id"
            )
            assert list(activities) == [
                (b["lead"]["id"], p["activity_kind"], b["submission_id"])
                for b, p in zip(bodies, payloads, strict=True)
            ]

    def test_values_with_quotes_percents_and_placeholders_are_stored_as_sent(self, api, org):
        """On PostgreSQL the new lead's values are written into its statement."""
        odd = "O'Brien 100% \\ {x} %s %(y)s ü"
        payload = {
            "email": "odd@initech.com",
            "city": odd,
            "custom": {"note": odd, "n": 1.5, "list": [None, True]},
            "properties": {"url": odd},
            "activity_kind": "page_view",
        }
        body = post(api, payload).json()
        assert body["outcome"] == "created"
        with tenant_scope(org):
            lead = Lead.objects.get(pk=body["lead"]["id"])
            assert (lead.city, lead.custom) == (odd, payload["custom"])
            assert Activity.objects.get(lead=lead).properties["url"] == odd

    def test_invalid_lead_is_400_with_reasons_and_the_submission_is_kept(self, api, org):
        error = assert_error(post(api, {"first_name": "Nobody"}), 400, "invalid_lead")
        assert any(r["code"] == "email_missing" for r in error["details"])
        [submission] = submissions_of(org)
        assert submission.payload == {"first_name": "Nobody"}
        assert submission.outcome == "invalid"
        assert submission.outcome_reasons == error["details"]
        assert leads_of(org) == []

    def test_junk_is_stored_and_quarantined(self, api, org):
        response = post(api, {"email": "test@test.com"})
        assert response.status_code == 201
        body = response.json()
        assert body["outcome"] == "junk" and body["created"] is True
        assert body["quality"] == "junk"
        assert any(r["code"] == "email_fake" for r in body["reasons"])
        assert post(api, {"email": "test@test.com"}).json()["created"] is False

    def test_touch_campaign_by_id_or_name_activity_and_consent(self, api, org):
        campaign = CampaignFactory(organization=org, name="Spring Webinar")
        body = post(
            api,
            {
                "email": "lin@acme-corp.com",
                "email_opt_in": True,
                "campaign": campaign.pk,
                "activity_kind": "form_submit",
                "properties": {"utm_source": "newsletter"},
            },
        ).json()
        lead = body["lead"]
        assert lead["first_campaign_id"] == campaign.pk
        assert lead["first_source"] == campaign.channel  # the campaign's channel by default
        assert lead["email_opt_in"] is True
        assert lead["email_opt_in_origin"] == "api: Website"
        with tenant_scope(org):
            [activity] = Activity.objects.filter(lead_id=lead["id"])
        assert activity.kind == "form_submit"
        assert activity.campaign_id == campaign.pk
        assert activity.properties["utm_source"] == "newsletter"
        assert activity.properties["submission_id"] == body["submission_id"]

        by_name = post(api, {"email": "lin@acme-corp.com", "campaign": "spring webinar"})
        assert by_name.json()["lead"]["latest_campaign_id"] == campaign.pk

    def test_another_orgs_campaign_is_rejected(self, api, org, other_org):
        foreign = CampaignFactory(organization=other_org, name="Theirs")
        for ref in (foreign.pk, "Theirs", 10**30):
            error = assert_error(
                post(api, {"email": "x@acme-corp.com", "campaign": ref}), 400, "unknown_campaign"
            )
            assert error["details"][0]["field"] == "campaign"
        assert leads_of(org) == [] and leads_of(other_org) == []
        assert [s.outcome for s in submissions_of(org)] == ["invalid"] * 3

    def test_html_is_stored_as_text(self, api, org):
        script = "<script>alert('x')</script>"
        body = post(api, {"email": "h@acme-corp.com", "last_name": script, "city": script}).json()
        [lead] = leads_of(org)
        # Kept verbatim (escaping is the renderer's job), and flagged for review.
        assert lead.last_name == lead.city == body["lead"]["city"] == script
        assert any(r["code"] == "name_has_markup" for r in body["reasons"])

    def test_unicode_and_10k_character_values(self, api, org):
        long_value = "ж" * 10_000
        response = post(
            api,
            {
                "email": "zoë@exämple.de",
                "first_name": "Zoë",
                "last_name": "Łukasiewicz-李",
                "title": long_value,
                "custom": {"notes": long_value},
            },
        )
        assert response.status_code == 201, response.content
        [lead] = leads_of(org)
        assert lead.first_name == "Zoë"
        assert lead.last_name == "Łukasiewicz-李"
        assert lead.title == long_value[: Lead._meta.get_field("title").max_length]
        assert lead.custom["notes"] == long_value
        assert submissions_of(org)[0].payload["title"] == long_value

    def test_overlong_identity_is_refused_not_truncated(self, api, org):
        overlong = {"email": "a" * 10_000 + "@acme-corp.com", "external_id": "9" * 201}
        for field, value in overlong.items():
            error = assert_error(post(api, {field: value}), 400, "invalid_request")
            assert [d["field"] for d in error["details"]] == [field]
        assert submissions_of(org) == []  # refused before anything is stored
        assert leads_of(org) == []


# --- Bad input --------------------------------------------------------------------------


@pytest.mark.django_db
class TestBadInput:
    def test_malformed_json_is_a_json_400(self, api, org):
        error = assert_error(post(api, '{"email": "a@b.example",'), 400, "malformed_json")
        assert "not valid JSON" in error["message"]
        assert submissions_of(org) == []

    @pytest.mark.parametrize("body", ["", "   ", b"\xff\xfe{}"])
    def test_empty_or_undecodable_body(self, api, body):
        assert_error(post(api, body), 400, "malformed_json")

    def test_nan_and_deep_nesting_are_rejected(self, api):
        assert_error(post(api, '{"email": NaN}'), 400, "malformed_json")
        assert_error(post(api, "[" * 100_000 + "]" * 100_000), 400, "malformed_json")

    def test_nul_and_lone_surrogates_are_rejected(self, api, org):
        assert_error(post(api, '{"email": "a@b.example", "city": "x\\u0000"}'), 400, "invalid_text")
        assert_error(post(api, '{"email": "a@b.example", "city": "\\ud800"}'), 400, "invalid_text")
        assert leads_of(org) == []

    def test_wrong_types_name_the_fields(self, api, org):
        error = assert_error(
            post(api, {"email": 42, "custom": "not-a-dict", "email_opt_in": "maybe"}),
            400,
            "invalid_request",
        )
        fields = {d["field"] for d in error["details"]}
        assert fields == {"email", "custom", "email_opt_in"}
        assert submissions_of(org) == []  # refused before anything is stored

    def test_unknown_fields_and_enum_values_are_rejected(self, api):
        error = assert_error(
            post(api, {"email": "a@b.example", "frist_name": "x"}), 400, "invalid_request"
        )
        assert error["details"][0]["field"] == "frist_name"
        error = assert_error(
            post(api, {"email": "a@b.example", "activity_kind": "dance"}), 400, "invalid_request"
        )
        assert error["details"][0]["field"] == "activity_kind"

    def test_body_must_be_an_object(self, api):
        assert_error(post(api, [{"email": "a@b.example"}]), 400, "invalid_request")

    def test_implausible_touch_time(self, api):
        error = assert_error(
            post(api, {"email": "a@b.example", "occurred_at": "1999-12-31T00:00:00Z"}),
            400,
            "invalid_request",
        )
        assert "2000" in error["message"]

    def test_oversized_body_is_413_by_header_and_by_size(self, api, org):
        big = json.dumps({"email": "a@b.example", "custom": {"blob": "x" * (1024 * 1024)}})
        assert_error(post(api, big), 413, "payload_too_large")
        # A lying Content-Length: the actual body is still bounded.
        response = api.generic(
            "POST", URL, big.encode(), content_type="application/json", CONTENT_LENGTH="100"
        )
        assert_error(response, 400, "malformed_json")  # only the declared 100 bytes are read
        assert submissions_of(org) == []

    def test_unknown_lead_and_unknown_route(self, api):
        assert_error(api.get(f"{URL}/999999"), 404, "not_found")


# --- Tenancy ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_keys_only_reach_their_own_organization(api, other_api, org, other_org):
    theirs = LeadFactory(organization=other_org, email="secret@globex.com")
    assert_error(api.get(f"{URL}/{theirs.pk}"), 404, "not_found")
    assert api.get(URL).json()["items"] == []
    # Same email through org A's key: a new lead of org A, org B's lead untouched.
    response = post(api, {"email": "secret@globex.com", "first_name": "Changed"})
    assert response.status_code == 201
    assert response.json()["lead"]["id"] != theirs.pk
    with tenant_scope(other_org):
        theirs.refresh_from_db()
    assert theirs.first_name != "Changed"
    assert other_api.get(f"{URL}/{theirs.pk}").status_code == 200
    assert [lead.email for lead in leads_of(org)] == ["secret@globex.com"]


# --- OpenAPI ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_openapi_describes_every_endpoint_and_the_auth_schemes():
    doc = Client().get("/api/v1/openapi.json").json()
    paths = doc["paths"]
    assert {"post", "get"} <= set(paths["/api/v1/leads"])
    assert "get" in paths["/api/v1/leads/{lead_id}"]
    assert "post" in paths["/api/v1/activities"]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKeyBearer"]["scheme"] == "bearer"
    assert schemes["ApiKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["ApiKeyHeader"]["description"],
    }
    for path, methods in paths.items():
        if path == "/api/v1/health":
            continue
        for operation in methods.values():
            assert {"ApiKeyBearer": []} in operation["security"], path
            assert "401" in operation["responses"], path
    upsert = paths["/api/v1/leads"]["post"]
    body = upsert["requestBody"]["content"]["application/json"]["schema"]
    assert {"email", "external_id", "campaign", "activity_kind"} <= set(body["properties"])
    assert "$defs" not in json.dumps(body)  # inline schema: every $ref must resolve
    assert {"200", "201", "400", "413", "429"} <= set(upsert["responses"])
    params = {p["name"] for p in paths["/api/v1/leads"]["get"]["parameters"]}
    assert {"q", "updated_after", "cursor", "limit", "order"} <= params
