"""Issue #12, item 1: an API upsert is all-or-nothing, bounded in time, and safe
to retry; the capture sweep never re-applies an API request.

Real PostgreSQL row locks (a second connection holds the lead's row), the real
Redis, and a real worker for the sweep."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest
from django.db import connection, transaction

from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, FormSubmission, Lead, SubmissionChannel, SubmissionOutcome
from leads.services.activities import api_submission_store
from leads.services.capture import SubmissionMeta, submission_store
from leads.tasks.capture import sweep_unprocessed_submissions
from tests.factories import LeadFactory, api_key_for
from tests.reliability.capture.support import api_client, backdate_submissions, post_lead
from tests.workers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EMAIL = "held@acme-corp.com"


@contextmanager
def row_locked(lead: Lead, *, seconds: float = 30):
    """Another transaction holds the lead's row (like a long import or a stuck
    admin session), on its own connection, until the block ends (at most
    `seconds`: code that waits for the lock holds the block open that long)."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with tenant_scope(lead.organization_id), transaction.atomic():
                Lead.objects.select_for_update().get(pk=lead.pk)
                locked.set()
                release.wait(seconds)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10), "the lock holder never got the row"
    try:
        yield
    finally:
        release.set()
        holder.join(10)


def advisory_locks_held() -> int:
    """Advisory locks granted in this test database (other xdist processes use their own)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return cursor.fetchone()[0]


def api_ledger(org, lead: Lead) -> dict:
    with tenant_scope(org):
        lead.refresh_from_db()
        return {
            "first_name": lead.first_name,
            "api_submissions": FormSubmission.objects.filter(channel=SubmissionChannel.API).count(),
            "activities": Activity.objects.filter(lead=lead).count(),
        }


def test_upsert_behind_a_row_lock_answers_503_fast_and_a_retry_applies_it_once(
    real_services, settings, org, other_org, api
):
    settings.LEADFLOW_API_LOCK_TIMEOUT_MS = 1000
    lead = LeadFactory(organization=org, email=EMAIL, first_name="Original")
    LeadFactory(organization=other_org, email=EMAIL, first_name="Other tenant")
    before = api_ledger(org, lead)
    body = {"email": EMAIL, "first_name": "Changed", "activity_kind": "demo_request"}

    with row_locked(lead, seconds=8):  # today's code would wait all of it, then apply
        started = time.monotonic()
        response = post_lead(api, body, **{"Idempotency-Key": "retry-1"})
        waited = time.monotonic() - started
        assert response.status_code == 503, response.content
        assert response["Retry-After"].isdigit()
        assert response.json()["error"]["code"] == "busy"
        assert waited < 4, f"the client waited {waited:.1f}s for a lock"
        # Nothing of the failed request is left, for a sweep to apply later.
        assert api_ledger(org, lead) == before

    retried = post_lead(api, body, **{"Idempotency-Key": "retry-1"})
    assert retried.status_code == 200, retried.content
    again = post_lead(api, body, **{"Idempotency-Key": "retry-1"})
    assert (again.status_code, again.json()) == (200, retried.json())
    assert again["Idempotent-Replayed"] == "true"
    misused = post_lead(api, {**body, "first_name": "Else"}, **{"Idempotency-Key": "retry-1"})
    assert misused.status_code == 422
    assert misused.json()["error"]["code"] == "idempotency_key_reused"

    after = api_ledger(org, lead)
    assert after == {
        "first_name": "Changed",
        "api_submissions": before["api_submissions"] + 1,  # sent 4, applied once
        "activities": before["activities"] + 1,
    }
    with tenant_scope(other_org):
        assert Lead.objects.get().first_name == "Other tenant"


def test_a_duplicate_sent_while_the_first_runs_gets_409_and_then_the_first_answer(
    real_services, settings, org, other_org, org_key, api
):
    settings.LEADFLOW_API_LOCK_TIMEOUT_MS = 15000
    lead = LeadFactory(organization=org, email=EMAIL, first_name="Original")
    key = api_key_for(other_org)  # the other tenant may use the same Idempotency-Key
    before = api_ledger(org, lead)
    body = {"email": EMAIL, "first_name": "Once", "activity_kind": "demo_request"}
    first: dict = {}

    def send_first():
        try:
            first["response"] = post_lead(api_client(org_key), body, **{"Idempotency-Key": "dup-1"})
        finally:
            connection.close()

    with row_locked(lead):
        sender = threading.Thread(target=send_first)
        sender.start()
        # The first request holds its key's lock and waits on the lead's row lock.
        wait_until(lambda: advisory_locks_held() == 1, timeout=10, what="the first request")
        started = time.monotonic()
        duplicate = post_lead(api, body, **{"Idempotency-Key": "dup-1"})
        assert time.monotonic() - started < 1.5
        assert duplicate.status_code == 409, duplicate.content
        assert duplicate.json()["error"]["code"] == "idempotency_key_in_use"
        other = post_lead(
            api_client(key),
            {"email": "someone@globex-corp.com"},
            **{"Idempotency-Key": "dup-1"},
        )
        assert other.status_code == 201
    sender.join(15)  # the row lock is gone: the first request completes
    assert first["response"].status_code == 200, first["response"].content
    replay = post_lead(api, body, **{"Idempotency-Key": "dup-1"})
    assert (replay.status_code, replay.json()) == (200, first["response"].json())
    assert api_ledger(org, lead) == {
        "first_name": "Once",
        "api_submissions": before["api_submissions"] + 1,
        "activities": before["activities"] + 1,
    }


def test_the_sweep_processes_lost_form_submissions_but_never_api_requests(
    worker, org, other_org, hosted
):
    lead = LeadFactory(organization=org, email=EMAIL, first_name="Original")
    with tenant_scope(org):
        # What a request that failed half-way left behind before this fix.
        stranded = api_submission_store(
            organization_id=org.pk, payload={"email": EMAIL, "first_name": "Stale"}
        )
        lost = submission_store(
            form=hosted, payload={"email": "lost@acme-corp.com"}, meta=SubmissionMeta()
        )
    backdate_submissions(org)
    sweep_unprocessed_submissions.apply_async()

    def form_processed():
        with tenant_scope(org):
            return FormSubmission.objects.get(pk=lost.pk).processed_at is not None

    wait_until(form_processed, timeout=60, what="the sweep to process the lost form submission")
    time.sleep(1)  # anything else the sweep queued has had its turn
    with tenant_scope(org):
        stranded.refresh_from_db()
        lead.refresh_from_db()
        assert FormSubmission.objects.get(pk=lost.pk).outcome == SubmissionOutcome.CREATED
        assert (stranded.processed_at, stranded.outcome) == (None, SubmissionOutcome.PENDING)
        assert lead.first_name == "Original"
        assert not Activity.objects.filter(lead=lead).exists()
    with tenant_scope(other_org):
        assert not FormSubmission.objects.exists()
