"""Queues that don't starve each other, with real workers as docker-compose runs
them: one worker per group (bulk: rescores, imports, reports; capture: form and
API submissions and the periodic passes; mail: notices and sends). A tenant
rescore occupies the bulk worker — it is held on its job row's lock for as long
as the test needs, so "long" does not depend on the machine's speed — and
meanwhile a hosted-form submission is processed, scored and routed to a rep, and
an SLA breach is found and its notice emailed. With one worker for every queue
(concurrency 1) the submission waits behind the rescore (the test times out)."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from leadflow.celery import app as celery_app
from leadflow.core.tenancy import tenant_scope
from pipeline.models import Assignment, Notification
from scoring import rescoring as scoring_rescoring
from scoring.models import RescoreJob, RescoreStatus
from tests import workers
from tests.factories import AssignmentFactory, LeadFactory
from tests.scale.lifecycle import routed, set_up_path, submit_form
from tests.workers import celery_worker, require_real_services, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def lock_waiters(conn) -> int:
    """Sessions of the test database waiting on a lock (the held rescore)."""
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ).fetchone()[0]


def sla_noticed(organization, assignment) -> bool:
    """The breach is stamped and its notice to the rep emailed."""
    with tenant_scope(organization):
        breached = Assignment.objects.filter(pk=assignment.pk, breached_at__isnull=False)
        emailed = Notification.objects.filter(
            kind="sla_breach",
            lead_id=assignment.lead_id,
            recipient_id=assignment.membership_id,
            emailed_at__isnull=False,
        )
        return breached.exists() and emailed.exists()


def test_a_running_rescore_delays_neither_a_form_submission_nor_an_sla_notice(
    tmp_path, org, other_org
):
    require_real_services()
    celery_app.conf.task_always_eager = False
    path = set_up_path(org)
    with tenant_scope(other_org):
        LeadFactory.create_batch(3, organization=other_org)
    with tenant_scope(org):
        late = AssignmentFactory(
            lead__organization=org, accept_due_at=timezone.now() - timedelta(hours=1)
        )
    # The rescore job of the other tenant, enqueued (on commit) to the scoring queue.
    with tenant_scope(other_org):
        job = scoring_rescoring.rescore_job_start(organization_id=other_org.pk, reason="Rules")
    holder = psycopg.connect(workers.test_database_url())
    try:
        holder.execute("SELECT 1 FROM scoring_rescorejob WHERE id = %s FOR UPDATE", [job.pk])
        with (
            celery_worker(tmp_path, group="bulk", concurrency=1),
            celery_worker(tmp_path, group="capture", concurrency=1),
            celery_worker(tmp_path, group="mail", concurrency=1),
        ):
            with psycopg.connect(workers.test_database_url(), autocommit=True) as probe:
                wait_until(lambda: lock_waiters(probe) == 1, what="the bulk worker's rescore")
                submit_form(path["form"], "ada@initech.com")
                celery_app.send_task("pipeline.sla_sweep")  # what beat sends every minute
                wait_until(
                    lambda: routed(org, "ada@initech.com") is not None,
                    timeout=60,
                    what="the submission to be scored and routed",
                )
                wait_until(lambda: sla_noticed(org, late), timeout=60, what="the SLA notice email")
                # Routed while the rescore still holds the bulk worker.
                assert lock_waiters(probe) == 1
            with tenant_scope(other_org):
                assert RescoreJob.objects.get(pk=job.pk).status == RescoreStatus.QUEUED
            lead = routed(org, "ada@initech.com")
            assert (lead["stage"], lead["rep_id"]) == ("mql", path["rep_id"])
            holder.rollback()  # the rescore goes on and finishes

            def rescored() -> bool:
                with tenant_scope(other_org):
                    return RescoreJob.objects.get(pk=job.pk).status == RescoreStatus.DONE

            wait_until(rescored, timeout=60, what="the rescore to finish")
    finally:
        holder.close()
