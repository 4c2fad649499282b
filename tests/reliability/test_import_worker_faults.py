"""Imports survive the faults of a real deployment: a real Celery worker (and
its embedded beat) on PostgreSQL and Redis, killed with SIGKILL mid-import, or
a task the broker lost. The job must finish by itself (or by an admin's resume)
with exact counts and no lead or activity twice."""

from __future__ import annotations

import os
import signal

import pytest
from django.test import Client

from leadflow.celery import app as celery_app
from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, ImportJob, Lead
from leads.services import imports as services
from tests.leads.test_import_jobs import upload
from tests.leads.test_import_views import job_url
from tests.reliability.dataset import dataset_lines
from tests.workers import celery_worker, require_real_services, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROWS = 300
# Small chunks (many commits to kill between), a short stale limit, a fast sweep.
WORKER_ENV = {
    "LEADS_IMPORT_CHUNK_ROWS": "5",
    "LEADS_IMPORT_STALE_SECONDS": "3",
    "LEADS_IMPORT_SWEEP_SECONDS": "1",
}


@pytest.fixture(autouse=True)
def real_worker(settings, tmp_path):
    require_real_services()
    celery_app.conf.task_always_eager = False
    settings.MEDIA_ROOT = tmp_path / "media"  # the worker's var/ is tmp_path
    settings.LEADS_IMPORT_STALE_SECONDS = 3


def started(org, admin) -> ImportJob:
    job = upload(org, admin, b"".join(dataset_lines(ROWS)), name="x-education-leads.csv")
    assert job.total_rows == ROWS and job.mapping["Prospect ID"] == "external_id"
    with tenant_scope(org):
        services.import_job_start(job=job, mapping=job.mapping, campaign=None, consent_basis="none")
    return job


def fresh(job) -> ImportJob:
    with tenant_scope(job.organization_id):
        return ImportJob.objects.get(pk=job.pk)


def kill_mid_import(worker, job) -> ImportJob:
    wait_until(
        lambda: fresh(job).processed_rows >= 50, timeout=60, interval=0.01, what="a first chunk"
    )
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    job = fresh(job)
    assert job.status == "running" and 50 <= job.processed_rows < ROWS, job.processed_rows
    return job


def assert_imported_exactly_once(job, org, other_org) -> None:
    job = fresh(job)
    assert job.status == "done"
    assert (job.created_count, job.merged_count, job.junk_count, job.failed_count) == (
        ROWS,
        0,
        0,
        0,
    )
    assert job.processed_rows == job.total_rows == ROWS
    with tenant_scope(org):
        assert Lead.objects.count() == ROWS
        assert Lead.objects.values("external_id").distinct().count() == ROWS
        assert Activity.objects.filter(kind="import").count() == ROWS
    with tenant_scope(other_org):
        assert not Lead.objects.exists()


def test_a_worker_killed_mid_import_is_resumed_by_the_sweep_of_a_new_worker(
    tmp_path, org, other_org, admin
):
    with celery_worker(tmp_path, extra_env=WORKER_ENV) as worker:
        job = kill_mid_import(worker, started(org, admin))
    # The killed run's task stays unacknowledged in Redis for its visibility
    # timeout (an hour): only the sweep of the next worker's beat brings it back.
    with celery_worker(tmp_path, extra_env=WORKER_ENV, beat=True):
        wait_until(lambda: fresh(job).status == "done", timeout=90, what="the resumed import")
    assert fresh(job).resumed_count >= 1
    assert_imported_exactly_once(job, org, other_org)


def test_a_queued_import_whose_task_the_broker_lost_is_resumed_by_the_sweep(
    tmp_path, org, other_org, admin
):
    job = started(org, admin)
    celery_app.control.purge()  # Redis lost the queued task (restarted without persistence)
    with celery_worker(tmp_path, extra_env=WORKER_ENV, beat=True):
        wait_until(lambda: fresh(job).status == "done", timeout=90, what="the resumed import")
    assert_imported_exactly_once(job, org, other_org)


def test_an_admin_resumes_a_stalled_import_from_its_page(tmp_path, org, other_org, admin):
    with celery_worker(tmp_path, extra_env=WORKER_ENV) as worker:
        job = kill_mid_import(worker, started(org, admin))
    client = Client()
    client.force_login(admin.user)
    url = job_url("import_detail", job)
    # No beat this time: the admin's action is the only way back.
    with celery_worker(tmp_path, extra_env=WORKER_ENV):
        wait_until(
            lambda: "Stalled — resuming" in client.get(url).content.decode(),
            timeout=30,
            what="the page to say the import stalled",
        )
        assert client.post(url, {"action": "resume"}).status_code == 302
        wait_until(lambda: fresh(job).status == "done", timeout=90, what="the resumed import")
    assert fresh(job).resumed_count == 1
    assert_imported_exactly_once(job, org, other_org)
