"""Imports recover by themselves: a lease with a heartbeat on the running job,
a sweep that resumes stalled jobs after their last committed chunk, an admin
"resume now" action, and an honest state on the page. (The real-worker
versions of these faults are in test_import_worker_faults.py.)"""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, ImportJob, Lead
from leads.services import imports as services
from leads.tasks import imports as tasks
from tests.leads.test_import_jobs import counts, many_people, upload
from tests.leads.test_import_views import job_url


@pytest.fixture(autouse=True)
def small_chunks(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LEADS_IMPORT_CHUNK_ROWS = 2
    settings.LEADS_IMPORT_STALE_SECONDS = 60


def queued(org, admin, rows: int = 6) -> ImportJob:
    """A started job whose task never ran (the broker lost it)."""
    job = upload(org, admin, many_people(rows))
    with tenant_scope(org), mock.patch.object(services, "_send"):
        services.import_job_start(job=job, mapping=job.mapping, campaign=None, consent_basis="none")
        return ImportJob.objects.get(pk=job.pk)


def age(job, **fields_seconds_ago) -> None:
    now = timezone.now()
    with tenant_scope(job.organization_id):
        ImportJob.objects.filter(pk=job.pk).update(
            **{name: now - timedelta(seconds=s) for name, s in fields_seconds_ago.items()}
        )


def killed_mid_way(org, admin, monkeypatch) -> ImportJob:
    """A run that committed one chunk and died in the second without a trace
    (SIGKILL: no exception handler ran, the lease is still held)."""
    job = queued(org, admin)
    real_commit = services._commit_chunk

    def die_in_second_chunk(job, runner, start, *args, **kwargs):
        if start == 2:
            raise SystemExit("SIGKILL")
        return real_commit(job, runner, start, *args, **kwargs)

    monkeypatch.setattr(services, "_commit_chunk", die_in_second_chunk)
    monkeypatch.setattr(services, "_release", lambda job, runner: None)  # never ran
    with tenant_scope(org), pytest.raises(SystemExit):
        services.import_job_run(job_id=job.pk)
    monkeypatch.setattr(services, "_commit_chunk", real_commit)
    monkeypatch.undo()
    with tenant_scope(org):
        job.refresh_from_db()
    assert (job.status, job.processed_rows) == ("running", 2) and job.runner
    return job


def sweep(capture) -> int:
    with capture(execute=True):
        return tasks.sweep_stale_imports.delay().get()


def test_a_killed_run_is_resumed_by_the_sweep_once_its_heartbeat_is_stale(
    org, other_org, admin, monkeypatch, django_capture_on_commit_callbacks
):
    job = killed_mid_way(org, admin, monkeypatch)
    with tenant_scope(org):
        assert not ImportJob.objects.get(pk=job.pk).stalled
    assert sweep(django_capture_on_commit_callbacks) == 0  # alive as far as anyone knows

    age(job, heartbeat_at=61, queued_at=61)
    with tenant_scope(org):
        assert ImportJob.objects.get(pk=job.pk).stalled
    assert sweep(django_capture_on_commit_callbacks) == 1
    with tenant_scope(org):
        job.refresh_from_db()
        assert (job.status, job.resumed_count, job.runner) == ("done", 1, "")
        assert counts(job) == (5, 0, 0, 1)
        assert Lead.objects.count() == 5 == Activity.objects.count()
    with tenant_scope(other_org):
        assert not ImportJob.objects.exists()


def test_a_queued_job_whose_task_was_lost_is_sent_again(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    job = queued(org, admin)
    assert job.queued_at and not job.stalled
    assert sweep(django_capture_on_commit_callbacks) == 0
    age(job, queued_at=61)
    assert sweep(django_capture_on_commit_callbacks) == 1
    with tenant_scope(org):
        job.refresh_from_db()
    assert (job.status, counts(job)) == ("done", (5, 0, 0, 1))


def test_the_sweep_sends_a_stalled_job_once_per_stale_period(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    job = queued(org, admin)
    age(job, queued_at=61)
    with mock.patch.object(tasks.import_job_run, "apply_async") as send:
        assert sweep(django_capture_on_commit_callbacks) == 1
        assert sweep(django_capture_on_commit_callbacks) == 0  # just re-sent: not yet due
    assert send.call_count == 1
    assert send.call_args.kwargs["kwargs"] == {"organization_id": org.pk, "job_id": job.pk}


def test_a_second_run_leaves_a_live_job_alone_and_takes_over_a_dead_one(
    org, other_org, admin, monkeypatch
):
    job = killed_mid_way(org, admin, monkeypatch)
    with tenant_scope(org):
        # The killed run's task, redelivered while the lease is fresh: hands off.
        assert services.import_job_run(job_id=job.pk) == services.RunResult.NOT_STARTED
        age(job, heartbeat_at=61)
        assert services.import_job_run(job_id=job.pk) == services.RunResult.DONE
        job.refresh_from_db()
        assert counts(job) == (5, 0, 0, 1)


def test_a_run_that_lost_its_lease_commits_nothing(org, other_org, admin, monkeypatch):
    """Run A stalls past the limit, run B takes the job over; A's next chunk is
    refused under the lock, so no row is imported twice."""
    job = queued(org, admin)
    real_commit = services._commit_chunk
    taken_over = []

    def stall_then_commit(job, runner, start, *args, **kwargs):
        if start == 2 and not taken_over:
            taken_over.append(True)
            age(job, heartbeat_at=61)
            assert services.import_job_run(job_id=job.pk) == services.RunResult.DONE  # B
        return real_commit(job, runner, start, *args, **kwargs)

    monkeypatch.setattr(services, "_commit_chunk", stall_then_commit)
    with tenant_scope(org):
        assert services.import_job_run(job_id=job.pk) == services.RunResult.SUPERSEDED  # A
        job.refresh_from_db()
        assert (job.status, counts(job), job.processed_rows) == ("done", (5, 0, 0, 1), 6)
        assert Activity.objects.count() == 5


def test_starting_with_the_broker_down_keeps_the_job_queued_for_the_sweep(
    org, other_org, admin, admin_client, django_capture_on_commit_callbacks
):
    from tests.leads.test_import_views import mapping_post

    job = upload(org, admin, many_people(3))
    with (
        mock.patch.object(tasks.import_job_run, "apply_async", side_effect=BrokerError("down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = admin_client.post(job_url("import_detail", job), mapping_post(job))
    assert response.status_code == 302  # the page answers; the sweep will send the run
    with tenant_scope(org):
        job.refresh_from_db()
    assert job.status == "queued" and job.queued_at


# --- the page -------------------------------------------------------------------------


def test_the_page_says_a_running_job_stalled_and_an_admin_resumes_it(
    org, other_org, admin, marketer, client_for, monkeypatch, django_capture_on_commit_callbacks
):
    job = killed_mid_way(org, admin, monkeypatch)
    admin_client, marketer_client = client_for(admin), client_for(marketer)
    page = admin_client.get(job_url("import_detail", job)).content.decode()
    assert "Last heartbeat" in page and "Stalled" not in page
    response = admin_client.post(job_url("import_detail", job), {"action": "resume"})
    assert response.status_code == 302
    with tenant_scope(org):
        assert ImportJob.objects.get(pk=job.pk).status == "running"  # a live run is left alone
    assert "still running" in admin_client.get(response["Location"]).content.decode()

    age(job, heartbeat_at=300)
    page = admin_client.get(job_url("import_detail", job)).content.decode()
    assert "Stalled — resuming" in page and "No progress since 5" in page
    assert "Resume now" in page
    marketer_page = marketer_client.get(job_url("import_detail", job)).content.decode()
    assert "Stalled — resuming" in marketer_page and "Resume now" not in marketer_page
    marketer_client.post(job_url("import_detail", job), {"action": "resume"})
    with tenant_scope(org):
        assert ImportJob.objects.get(pk=job.pk).resumed_count == 0  # marketers wait for the sweep

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(job_url("import_detail", job), {"action": "resume"})
    with tenant_scope(org):
        job.refresh_from_db()
    assert (job.status, job.resumed_count, counts(job)) == ("done", 1, (5, 0, 0, 1))
    # Another organization's admin can't reach it.
    with tenant_scope(other_org):
        assert not ImportJob.objects.filter(pk=job.pk).exists()


def test_the_list_shows_a_queued_job_nobody_picked_up(
    org, other_org, admin, admin_client, django_capture_on_commit_callbacks
):
    from tests.leads.test_import_views import list_url

    job = queued(org, admin)
    assert "not picked up" not in admin_client.get(list_url(org)).content.decode()
    age(job, queued_at=61)
    assert "Queued — not picked up" in admin_client.get(list_url(org)).content.decode()
