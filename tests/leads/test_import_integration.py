"""An import started from the web runs on a real Celery worker (Redis,
PostgreSQL, no eager mode) while the page polls its progress."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from leadflow.celery import app as celery_app
from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, ImportJob, Lead
from tests.leads.test_import_jobs import csv_bytes
from tests.workers import celery_worker, require_real_services, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_worker_imports_while_the_page_polls(tmp_path, settings, org, admin, other_org):
    require_real_services()
    celery_app.conf.task_always_eager = False
    settings.MEDIA_ROOT = tmp_path / "media"  # the worker's var/ is tmp_path
    rows = [["Email", "First Name", "Visits"]]
    rows += [[f"person{i}@acme-corp.com", f"Person{i}", str(i % 9)] for i in range(2500)]
    rows.append(["", "Nobody", "1"])
    client = Client()
    client.force_login(admin.user)
    with celery_worker(tmp_path):
        response = client.post(
            reverse("leads:import_list", kwargs={"org_slug": org.slug}),
            {"file": SimpleUploadedFile("big.csv", csv_bytes(rows))},
        )
        detail = response["Location"]
        with tenant_scope(org):
            job = ImportJob.objects.get()
        fields = {f"col_{i}": t for i, t in enumerate(["email", "first_name", "custom:visits"])}
        response = client.post(detail, {**fields, "consent_basis": "none", "action": "start"})
        assert response.status_code == 302
        progress = reverse("leads:import_progress", kwargs={"org_slug": org.slug, "job_id": job.pk})
        seen: list[int] = []

        def finished():
            html = client.get(progress, HTTP_HX_REQUEST="true").content.decode()
            seen.append(int(re.search(r'aria-valuenow="(\d+)"', html).group(1)))
            return "hx-trigger" not in html

        wait_until(finished, timeout=180, what="the worker to finish the import")
    assert seen[-1] == 100 and seen == sorted(seen)  # the bar only moves forward
    with tenant_scope(org):
        job.refresh_from_db()
        assert (job.status, job.created_count, job.failed_count) == ("done", 2500, 1)
        assert Lead.objects.count() == 2500 == Activity.objects.count()
        assert Lead.objects.get(email="person10@acme-corp.com").custom == {"visits": 1}
    with tenant_scope(other_org):
        assert not Lead.objects.exists()
