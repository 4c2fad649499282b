"""Helpers of the capture reliability tests: hosted forms, API calls, outages
and the ledger of what was stored and processed."""

from __future__ import annotations

import socket
from datetime import timedelta

from django.test import Client
from django.utils import timezone

from leadflow.core.tenancy import tenant_scope
from leads.models import Activity, FormSubmission, Lead
from tests.factories import CaptureFormFactory, CaptureFormFieldFactory

API_URL = "/api/v1/leads"


def make_hosted_form(organization, name: str = "Contact us"):
    form = CaptureFormFactory(organization=organization, name=name)
    CaptureFormFieldFactory(
        form=form, key="email", label="Email", field_type="email", maps_to="email", required=True
    )
    CaptureFormFieldFactory(form=form, key="first_name", label="First name", maps_to="first_name")
    return form


def api_client(key: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {key}"}, raise_request_exception=False)


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
    """What an organization holds: submissions stored / processed / pending,
    leads, and form_submit touchpoints (one per processed form submission)."""
    with tenant_scope(organization):
        submissions = FormSubmission.objects.all()
        return {
            "stored": submissions.count(),
            "processed": submissions.filter(processed_at__isnull=False).count(),
            "pending": submissions.filter(processed_at__isnull=True).count(),
            "leads": Lead.objects.count(),
            "activities": Activity.objects.filter(kind="form_submit").count(),
        }
