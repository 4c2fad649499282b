"""Capture-form friction: keys made from labels, a prefilled minimum fill time,
copy buttons, the resizing embed, and custom attributes by their label."""

import re

import pytest
from django.urls import reverse

from leadflow.core.tenancy import tenant_scope
from leads.models import CaptureForm, CaptureFormField
from leads.services.capture_forms import key_from_label
from tests.factories import CaptureFormFactory, CaptureFormFieldFactory, LeadFactory

pytestmark = pytest.mark.django_db

BASE = "/o/acme/forms/"


@pytest.fixture
def capture_form(org, other_org):
    form = CaptureFormFactory(organization=org, name="Demo")
    CaptureFormFieldFactory(form=form, key="email", label="Email", maps_to="email")
    # Org B's form has a "job_title" already: it must not count for org A.
    other = CaptureFormFactory(organization=other_org, name="Demo")
    CaptureFormFieldFactory(form=other, key="job_title", label="Job title")
    return form


def field(**overrides):
    data = {"label": "Job title", "key": "", "field_type": "text", "maps_to": "custom"}
    data.update({"required": "", "options": "", "help_text": "", "default_value": ""})
    return {**data, **overrides}


def keys(form):
    with tenant_scope(form.organization):
        return list(CaptureFormField.objects.filter(form=form).values_list("key", flat=True))


@pytest.mark.parametrize(
    "label, taken, key",
    [
        ("Job title", [], "job_title"),
        ("Job title", ["job_title"], "job_title_2"),
        ("Job title", ["job_title", "job_title_2"], "job_title_3"),
        ("Größe des Teams", [], "grosse_des_teams"),
        ("Page URL", [], "page_url_2"),  # page_url is the hosted form's own
        ("  ?! ", [], "field"),
        ("x" * 100, [], "x" * 56),
    ],
)
def test_key_from_label(label, taken, key):
    assert key_from_label(label, taken) == key


def test_an_empty_key_is_made_from_the_label_unique_in_the_form(admin_client, capture_form):
    url = f"{BASE}{capture_form.pk}/fields/new/"
    assert admin_client.post(url, field()).status_code == 302
    assert admin_client.post(url, field()).status_code == 302
    assert admin_client.post(url, field(label="Team size", key="seats")).status_code == 302
    assert keys(capture_form) == ["email", "job_title", "job_title_2", "seats"]


def test_the_field_editor_fills_the_key_as_the_label_is_typed(admin_client, capture_form):
    html = admin_client.get(f"{BASE}{capture_form.pk}/fields/new/").content.decode()
    assert 'data-key-from="id_label"' in html and 'data-key-taken="email"' in html
    assert "/static/js/form-builder.js" in html
    assert re.search(r'name="key"[^>]*>', html) and "required" not in re.search(
        r'<input[^>]*name="key"[^>]*>', html
    ).group(0)


def test_minimum_fill_time_is_prefilled_and_a_blank_means_the_default(admin_client, org):
    html = admin_client.get(f"{BASE}new/").content.decode()
    assert re.search(r'name="min_fill_seconds" value="3"', html)
    data = {"name": "Webinar", "activity_kind": "form_submit", "submit_label": "Send"}
    data.update({"success_message": "Thanks", "is_active": "on", "min_fill_seconds": ""})
    response = admin_client.post(f"{BASE}new/", data)
    assert response.status_code == 302
    with tenant_scope(org):
        assert CaptureForm.objects.get(name="Webinar").min_fill_seconds == 3


def test_copy_buttons_and_the_resizing_embed(admin_client, client, capture_form):
    html = admin_client.get(f"{BASE}{capture_form.pk}/").content.decode()
    for target in ("#hosted-link", "#embed-iframe", "#embed-html"):
        assert f'data-copy="{target}"' in html
    assert "/static/js/copy-buttons.js" in html
    assert "data-leadflow-form" in html and "leadflow-embed.js" in html
    # No inline script on the page (CSP): every <script> has a src.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    hosted = client.get(f"/f/{capture_form.key}/").content.decode()
    assert "/static/js/leadflow-form.js" in hosted


def test_custom_attributes_by_label_on_the_lead_page(admin_client, org, capture_form):
    CaptureFormFieldFactory(form=capture_form, key="team_size", label="Team size")
    with tenant_scope(org):
        lead = LeadFactory(organization=org, custom={"team_size": "11-50", "imported_col": "x"})
    html = admin_client.get(
        reverse("leads:lead_detail", kwargs={"org_slug": org.slug, "lead_id": lead.pk})
    ).content.decode()
    assert re.search(r"<dt[^>]*>Team size</dt><dd[^>]*>11-50</dd>", html)
    assert ">team_size<" not in html
    assert re.search(r"<dt[^>]*>imported_col</dt>", html)  # no form names it: its key
