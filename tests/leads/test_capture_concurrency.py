"""Concurrent submissions of the same new email through the processing service
produce exactly one lead (a unique constraint plus ingest's retry). Real threads,
each with its own connection, so this needs PostgreSQL's row locks."""

import threading

import pytest
from django.conf import settings
from django.db import connection

from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, ActivityKind, FormSubmission, Lead, SubmissionOutcome
from leads.services import capture
from tests.factories import CaptureFormFactory, CaptureFormFieldFactory

THREADS = 8

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        "postgresql" not in settings.DATABASES["default"]["ENGINE"],
        reason="needs PostgreSQL (SQLite serializes writers)",
    ),
]


@pytest.mark.django_db(transaction=True)
def test_same_new_email_from_eight_threads_makes_one_lead(org, other_org):
    form = CaptureFormFactory(organization=org, activity_kind=ActivityKind.DEMO_REQUEST)
    CaptureFormFieldFactory(
        form=form, key="email", field_type="email", maps_to="email", required=True
    )
    CaptureFormFieldFactory(form=form, key="first_name", maps_to="first_name")
    CaptureFormFactory(organization=other_org)
    with tenant_scope(org):
        ids = [
            capture.submission_store(
                form=form,
                payload={
                    "email": "race.condition@initech.com"
                    if i % 2
                    else "Race.Condition@INITECH.com",
                    "first_name": f"Thread{i}",
                },
                meta=capture.SubmissionMeta(),
            ).pk
            for i in range(THREADS)
        ]
    barrier = threading.Barrier(THREADS)
    errors = []

    def work(submission_id):
        try:
            barrier.wait(timeout=30)
            with tenant_scope(org.pk):
                capture.submission_process(submission_id=submission_id)
        except Exception as exc:  # reported below; a thread must not die silently
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(pk,)) for pk in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with tenant_scope(org):
        assert Lead.objects.count() == 1
        lead = Lead.objects.get()
        outcomes = sorted(FormSubmission.objects.values_list("outcome", flat=True))
        assert Activity.objects.filter(lead=lead, kind=ActivityKind.DEMO_REQUEST).count() == THREADS
    assert lead.email == "race.condition@initech.com"
    assert outcomes == sorted([SubmissionOutcome.CREATED] + [SubmissionOutcome.MERGED] * 7)
    with tenant_scope(other_org):
        assert not Lead.objects.exists()
