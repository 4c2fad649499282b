"""Schemathesis against the live WSGI app: every operation of the OpenAPI
document, with a real API key, every built-in check (no server error, status
codes, content types, headers and bodies as documented, schema-violating input
refused, valid input accepted, auth not ignored, …), on PostgreSQL.

Bounded: MAX_EXAMPLES per operation and phase keeps the whole run well under
three minutes on two cores.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, connection
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks

from leadflow.core.tenancy import tenant_scope
from leadflow.wsgi import application
from leads.models import Activity, Company, FormSubmission, Lead
from pipeline.models import StageTransition
from tests.factories import CampaignFactory, LeadFactory, OrganizationFactory, api_key_for

MAX_EXAMPLES = 50

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
# An oversized batch (more items than maxItems) is refused with the documented 413.
_rejection = schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "413"]  # not the shared default


def schema_valid_input_passes_validation(ctx, response, case):
    """Positive data may be refused by a business rule the schema can't express
    (no email nor external_id, an unknown campaign, a move the stage table
    forbids: a 400 with its own code), never by input validation: that would be
    the document and the validator disagreeing."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if case.meta.constants_draws:
        # Constants schemathesis injects into "positive" cases may break the
        # documented bounds (seen: company_size -2289725934641912).
        return None
    if response.status_code != 400:
        return None
    error = response.json()["error"]
    if error["code"] == "malformed_json" or (
        error["code"] in ("invalid_request", "unknown_parameter") and error["details"]
    ):
        raise AssertionError(f"Schema-valid input refused by validation: {error}")
    return None


load_all_checks()
# Every built-in check; positive_data_acceptance in the business-rule-aware form above.
ALL_CHECKS = [
    check for check in CHECKS.get_all() if check.__name__ != "positive_data_acceptance"
] + [schema_valid_input_passes_validation]

TENANT_TABLES = (Lead, Company, Activity, StageTransition)


@pytest.fixture
def wsgi_in_test_transaction():
    """The WSGI handler closes the database connection after each request; the
    test client's trick keeps it (and the test's transaction) open."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_headers(db, settings, wsgi_in_test_transaction):
    settings.LEADFLOW_API_RATE_LIMIT = "100000/m"
    org = OrganizationFactory(slug="fuzz")
    other = OrganizationFactory(slug="fuzz-other")
    with tenant_scope(org):
        lead = LeadFactory(organization=org, email="known@acme-corp.com")
        CampaignFactory(organization=org, name="Spring")
    with tenant_scope(other):
        LeadFactory(organization=other)
    return {"Authorization": f"Bearer {api_key_for(org)}"}, org, lead


def _counts(org) -> dict[str, int]:
    """Rows of the tenant's lead data, and its raw submissions still unfinished."""
    with tenant_scope(org):
        counts = {m.__name__: m.objects.count() for m in TENANT_TABLES}
        counts["unfinished"] = FormSubmission.objects.filter(processed_at__isnull=True).count()
    return counts


@pytest.mark.postgres
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
def test_api_conforms_to_its_openapi_document(case, api_headers, fuzz_stats):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL catches what SQLite lets through (NUL, offsets, int overflow)")
    headers, org, _ = api_headers
    before = _counts(org)
    stats = fuzz_stats
    stats["fuzz_cases"] += 1
    if case.meta is not None and not case.meta.generation.mode.is_positive:
        # Negative cases may carry a broken credential on purpose: keep it.
        headers = {k: v for k, v in headers.items() if k not in (case.headers or {})}
    response = case.call(headers=headers)
    if response.status_code >= 500:
        stats["fuzz_server_errors"] += 1
    # An error writes nothing partial: no lead data, nothing left for the sweeper
    # (a body refused by a business rule is kept, finished and marked invalid).
    if response.status_code >= 400 and _counts(org) != before:
        stats["fuzz_partial_writes"] += 1
        pytest.fail(f"{case.method} {case.path} answered {response.status_code} but wrote rows")
    case.validate_response(response, checks=ALL_CHECKS, headers=headers)
