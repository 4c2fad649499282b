"""API writes: one transaction per request (a 5xx leaves nothing behind), the
Idempotency-Key contract, and 503 for database faults. Fast (SQLite); the
row-lock and concurrency cases against PostgreSQL are in tests/reliability/."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from accounts.api_writes import idempotency_keys_purge
from accounts.models import ApiIdempotencyKey
from leadflow.core.tenancy import enqueue_on_commit, tenant_scope
from leads import api as leads_api
from leads.models import FormSubmission, Lead
from leads.tasks.capture import process_submission
from tests.factories import api_key_for

pytestmark = pytest.mark.django_db
URL = "/api/v1/leads"


@pytest.fixture
def api(org):
    return Client(
        headers={"Authorization": f"Bearer {api_key_for(org)}"}, raise_request_exception=False
    )


@pytest.fixture
def other_api(other_org):
    return Client(headers={"Authorization": f"Bearer {api_key_for(other_org)}"})


def post(client, body, key=None):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(URL, body, content_type="application/json", headers=headers)


def counts(org):
    with tenant_scope(org):
        return (
            Lead.objects.count(),
            FormSubmission.objects.count(),
            ApiIdempotencyKey.objects.count(),
        )


def test_a_retry_with_the_same_key_replays_the_answer_and_writes_nothing(api, org, other_org):
    body = {"email": "ann@acme-corp.com", "first_name": "Ann"}
    first = post(api, body, key="k-1")
    again = post(api, {"first_name": "Ann", "email": "ann@acme-corp.com"}, key="k-1")
    assert first.status_code == 201
    assert (again.status_code, again.json()) == (201, first.json())
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert counts(org) == (1, 1, 1)
    assert counts(other_org) == (0, 0, 0)


def test_the_same_key_for_another_request_is_a_422(api, org):
    post(api, {"email": "ann@acme-corp.com"}, key="k-1")
    response = post(api, {"email": "bob@acme-corp.com"}, key="k-1")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert counts(org) == (1, 1, 1)


def test_keys_belong_to_one_organization(api, other_api, org, other_org):
    assert post(api, {"email": "ann@acme-corp.com"}, key="shared").status_code == 201
    other = post(other_api, {"email": "zed@globex-corp.com"}, key="shared")
    assert other.status_code == 201 and "Idempotent-Replayed" not in other
    assert counts(org) == (1, 1, 1) and counts(other_org) == (1, 1, 1)


def test_a_refused_request_is_replayed_too(api, org):
    first = post(api, {"first_name": "No identity"}, key="k-bad")
    again = post(api, {"first_name": "No identity"}, key="k-bad")
    assert first.status_code == 400
    assert (again.status_code, again.json()) == (400, first.json())
    assert counts(org) == (0, 1, 1)  # the body kept once, marked invalid


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve"])
def test_a_malformed_key_is_a_400(api, org, key):
    response = post(api, {"email": "ann@acme-corp.com"}, key=key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert counts(org) == (0, 0, 0)


def test_a_request_that_fails_half_way_leaves_nothing_and_its_retry_applies_once(api, org):
    real = leads_api.lead_upsert

    def upsert_then_crash(**kwargs):
        real(**kwargs)  # the lead is written...
        raise RuntimeError("...and then the request dies")

    with mock.patch.object(leads_api, "lead_upsert", upsert_then_crash):
        failed = post(api, {"email": "ann@acme-corp.com"}, key="k-2")
    assert failed.status_code == 500
    assert counts(org) == (0, 0, 0)  # no lead, no stored body for a sweep, no key
    assert post(api, {"email": "ann@acme-corp.com"}, key="k-2").status_code == 201
    assert counts(org) == (1, 1, 1)


def test_a_database_fault_is_a_503_with_retry_after(api, org):
    fault = OperationalError("server closed the connection unexpectedly")
    with mock.patch.object(leads_api, "lead_upsert", side_effect=fault):
        response = post(api, {"email": "ann@acme-corp.com"}, key="k-3")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json()["error"]["code"] == "service_unavailable"
    assert counts(org) == (0, 0, 0)


def test_a_write_committed_before_the_broker_failed_is_not_answered_5xx(
    api, org, caplog, django_capture_on_commit_callbacks
):
    real = leads_api.lead_upsert

    def upsert_and_enqueue(**kwargs):
        result = real(**kwargs)
        enqueue_on_commit(process_submission, organization_id=org.pk, submission_id=0)
        return result

    with (
        mock.patch.object(leads_api, "lead_upsert", upsert_and_enqueue),
        mock.patch.object(process_submission, "apply_async", side_effect=BrokerError("down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = post(api, {"email": "ann@acme-corp.com"}, key="k-4")
    assert response.status_code == 201  # it was written: saying 5xx would invite a double
    assert counts(org) == (1, 1, 1)
    assert "Broker unavailable" in caplog.text


def test_the_api_rate_limiter_fails_open_when_the_cache_is_down(api, org, caplog):
    with (
        mock.patch("accounts.api_auth.get_usage", side_effect=ConnectionError("refused")),
        mock.patch("redis.client.Pipeline.execute", side_effect=ConnectionError("refused")),
    ):
        response = post(api, {"email": "ann@acme-corp.com"})
    assert response.status_code == 201
    assert "Rate-limit cache down" in caplog.text


def test_the_rate_limit_on_redis_is_one_round_trip_and_django_ratelimits_count(
    api, other_api, settings
):
    """On Redis the per-key count is one pipelined round trip (SET NX EX, INCR)
    under django-ratelimit's own key and window: its get_usage sees the same count."""
    import redis
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache
    from django.test import RequestFactory
    from django_ratelimit.core import get_usage

    from accounts.models import ApiKey

    if not isinstance(caches["default"], RedisCache):
        pytest.skip("needs Redis as the cache (scripts/with_services.py)")
    settings.LEADFLOW_API_RATE_LIMIT = "2/m"
    with (
        mock.patch.object(
            redis.client.Pipeline,
            "execute",
            autospec=True,
            side_effect=redis.client.Pipeline.execute,
        ) as pipelines,
        mock.patch.object(
            redis.Redis, "execute_command", autospec=True, side_effect=redis.Redis.execute_command
        ) as commands,
    ):
        first = post(api, {"email": "ann@acme-corp.com"})
        assert pipelines.call_count == 1
        assert not [c for c in commands.call_args_list if "ratelimit" in str(c) or "rl:" in str(c)]
    assert (first.status_code, first["X-RateLimit-Remaining"]) == (201, "1")
    prefix = ApiKey.objects.order_by("pk").values_list("prefix", flat=True).first()
    usage = get_usage(
        RequestFactory().post(URL), group="api-key", key=lambda g, r: prefix, rate="2/m"
    )
    assert usage["count"] == 1
    assert post(api, {"email": "bob@acme-corp.com"})["X-RateLimit-Remaining"] == "0"
    limited = post(api, {"email": "cy@acme-corp.com"})
    assert limited.status_code == 429 and 1 <= int(limited["Retry-After"]) <= 65
    assert post(other_api, {"email": "ann@acme-corp.com"}).status_code == 201  # per key


def test_answers_are_forgotten_after_a_day(api, org):
    post(api, {"email": "ann@acme-corp.com"}, key="k-old")
    with tenant_scope(org):
        ApiIdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_keys_purge() == 1
    assert post(api, {"email": "bob@acme-corp.com"}, key="k-old").status_code == 201


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first", ["batched", "prepared"])
def test_the_write_timeouts_bound_the_transactions_first_statement_too(org, settings, first):
    """write_transaction sets the timeouts in the first statement's round trip
    (or just before one it can't batch): they are in force for that statement
    itself, the cursor answers with its result, and they end with the
    transaction."""
    from django.db import connection

    from accounts.api_writes import write_transaction
    from leadflow.core.server_prepared import preparing_cursor, server_prepared

    if connection.vendor != "postgresql" or (first == "prepared" and not server_prepared()):
        pytest.skip("PostgreSQL's timeouts")
    settings.LEADFLOW_API_LOCK_TIMEOUT_MS = 1234
    settings.LEADFLOW_API_STATEMENT_TIMEOUT_MS = 4321
    query = "SELECT current_setting('lock_timeout'), current_setting('statement_timeout'), %s"
    with write_transaction():
        cursor_of = preparing_cursor if first == "prepared" else connection.cursor
        with cursor_of() as cursor:
            cursor.execute(query, ["mine"])
            assert cursor.fetchall() == [("1234ms", "4321ms", "mine")]
        with connection.cursor() as cursor:
            cursor.execute(query, ["next"])
            assert cursor.fetchall() == [("1234ms", "4321ms", "next")]
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        assert cursor.fetchone() != ("1234ms",)


def test_a_write_reads_its_organizations_facts_in_the_rate_limit_round_trip(
    api, other_api, org, other_org
):
    """On Redis an API write reads its organization's facts (leadflow.core.orgfacts)
    in the pipeline that counts its rate limit: the ingest asks the cache no
    more, and the facts read are that organization's own."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    from leadflow.core import orgfacts

    if not isinstance(caches["default"], RedisCache):
        pytest.skip("needs Redis as the cache (scripts/with_services.py)")
    assert post(api, {"email": "first@acme-corp.com"}).status_code == 201  # facts now known
    assert post(other_api, {"email": "first@globex.example"}).status_code == 201
    seen = []
    real = orgfacts.org_facts_prefetched

    def prefetched(organization_id, found=None):
        seen.append((organization_id, sorted(found or {})))
        return real(organization_id, found=found)

    with (
        mock.patch.object(orgfacts, "org_facts_prefetched", side_effect=prefetched),
        mock.patch.object(orgfacts.cache, "get_many", side_effect=AssertionError("a round trip")),
    ):
        assert post(api, {"email": "ann@acme-corp.com"}).status_code == 201
    assert seen and all(org_id == org.pk for org_id, _ in seen)
    assert seen[0][1] and all(f":{org.pk}" in key for key in seen[0][1])


@pytest.mark.django_db(transaction=True)
def test_a_write_that_starts_with_a_server_side_cursor_is_bounded_too(org, settings):
    """A named (server-side) cursor only declares its statement: the timeouts
    go through a cursor of their own before it, and are in force."""
    from django.db import connection

    from accounts.api_writes import write_transaction

    if connection.vendor != "postgresql" or connection.settings_dict.get(
        "DISABLE_SERVER_SIDE_CURSORS"
    ):
        pytest.skip("PostgreSQL's server-side cursors")
    settings.LEADFLOW_API_LOCK_TIMEOUT_MS = 1234
    with tenant_scope(org):
        Lead.objects.create(organization=org, email="a@acme.example")
        with write_transaction():
            assert [lead.email for lead in Lead.objects.iterator(chunk_size=10)] == [
                "a@acme.example"
            ]
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('lock_timeout')")
                assert cursor.fetchone() == ("1234ms",)
