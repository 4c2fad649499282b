"""Fixtures of the reliability group: a real Celery worker on the test
PostgreSQL and Redis, a hosted form and an API client of one organization,
with a second organization in play, and ledgers of what was sent and stored."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from leadflow.celery import app as celery_app
from leadflow.tenancy import tenant_scope
from leads.models import Activity, FormSubmission, Lead
from tests.factories import CaptureFormFactory, CaptureFormFieldFactory, api_key_for
from tests.workers import celery_worker, require_real_services

API_URL = "/api/v1/leads"


@pytest.fixture
def real_services():
    require_real_services()
    celery_app.conf.task_always_eager = False


@pytest.fixture
def worker(real_services, tmp_path):
    with celery_worker(tmp_path) as proc:
        yield proc


def make_hosted_form(organization):
    form = CaptureFormFactory(organization=organization, name="Contact us")
    CaptureFormFieldFactory(
        form=form, key="email", field_type="email", maps_to="email", required=True
    )
    CaptureFormFieldFactory(form=form, key="first_name", maps_to="first_name")
    return form


@pytest.fixture
def hosted(org, other_org):
    make_hosted_form(other_org)  # a look-alike in the other tenant must stay empty
    return make_hosted_form(org)


def api_client(key: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {key}"}, raise_request_exception=False)


@pytest.fixture
def org_key(org):
    return api_key_for(org)


@pytest.fixture
def api(org_key):
    return api_client(org_key)


def form_url(form) -> str:
    return f"/f/{form.key}/"


def post_lead(client, body: dict, **headers):
    return client.post(API_URL, body, content_type="application/json", headers=headers)


def dead_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backdate_submissions(organization, minutes: int = 5) -> None:
    """Make stored submissions old enough for the sweep to consider them lost."""
    with tenant_scope(organization):
        FormSubmission.objects.update(received_at=timezone.now() - timedelta(minutes=minutes))


def ledger(organization) -> dict[str, int]:
    with tenant_scope(organization):
        submissions = FormSubmission.objects.all()
        return {
            "stored": submissions.count(),
            "processed": submissions.filter(processed_at__isnull=False).count(),
            "pending": submissions.filter(processed_at__isnull=True).count(),
            "leads": Lead.objects.count(),
            "activities": Activity.objects.filter(kind="form_submit").count(),
        }
