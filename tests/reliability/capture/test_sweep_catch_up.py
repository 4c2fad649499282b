"""Issue #12, item 8: after a lost broker, one sweep drains the whole backlog
as fast as the worker processes it (no longer 500 per organization per beat
minute), organizations take turns, and nothing is processed twice."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db.models import Max
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from leads.models import FormSubmission
from leads.tasks.capture import sweep_unprocessed_submissions
from tests.reliability.capture.support import ledger, make_hosted_form
from tests.workers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BACKLOG = {"acme": 520, "globex": 40}  # acme's backlog is more than one old sweep took


def lost_backlog(form, count: int) -> None:
    with tenant_scope(form.organization_id):
        FormSubmission.objects.bulk_create(
            FormSubmission(
                organization_id=form.organization_id,
                form=form,
                payload={"email": f"backlog{i}@{form.organization.slug}-corp.com"},
            )
            for i in range(count)
        )
        FormSubmission.objects.update(received_at=timezone.now() - timedelta(minutes=5))


def test_one_sweep_drains_every_organizations_backlog_fairly_and_once(worker, org, other_org):
    forms = {o.slug: make_hosted_form(o) for o in (org, other_org)}
    for slug, count in BACKLOG.items():
        lost_backlog(forms[slug], count)
    started = time.monotonic()
    sweep_unprocessed_submissions.apply_async()  # one beat tick

    def drained():
        return all(ledger(o)["pending"] == 0 for o in (org, other_org))

    wait_until(drained, timeout=75, interval=0.5, what="the sweep to drain the backlog")
    elapsed = time.monotonic() - started
    print(f"swept {sum(BACKLOG.values())} submissions in {elapsed:.1f}s")
    finished = {}
    for o in (org, other_org):
        count = BACKLOG[o.slug]
        assert ledger(o) == {
            "stored": count,
            "processed": count,
            "pending": 0,
            "leads": count,
            "activities": count,  # each submission's touch recorded once
        }
        with tenant_scope(o):
            # Each was claimed and processed by exactly one task.
            assert set(FormSubmission.objects.values_list("attempts", flat=True)) == {1}
            finished[o.slug] = FormSubmission.objects.aggregate(last=Max("processed_at"))["last"]
    # The smaller organization did not wait behind the larger one's whole backlog.
    assert finished["globex"] < finished["acme"]
