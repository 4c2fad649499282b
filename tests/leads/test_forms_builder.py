"""The capture form builder: settings, fields editor, live preview, embed, submissions."""

import pytest
from django_scopes import scopes_disabled

from leadflow.core.tenancy import tenant_scope
from leads.models import CaptureForm, CaptureFormField, FieldType, SubmissionOutcome
from leads.services import capture_forms as builder
from tests.factories import (
    CampaignFactory,
    CaptureFormFactory,
    CaptureFormFieldFactory,
    FormSubmissionFactory,
    LeadFactory,
)

pytestmark = pytest.mark.django_db

BASE = "/o/acme/forms/"


@pytest.fixture
def capture_form(org, other_org):
    form = CaptureFormFactory(organization=org, name="Newsletter")
    CaptureFormFieldFactory(
        form=form, key="email", label="Email", field_type="email", maps_to="email", required=True
    )
    CaptureFormFieldFactory(form=form, key="first_name", label="First name", maps_to="first_name")
    CaptureFormFieldFactory(form=form, key="role", label="Role", maps_to="custom")
    CaptureFormFactory(organization=other_org, name="Newsletter")  # org B's namesake
    return form


def keys(form):
    with tenant_scope(form.organization):
        return list(CaptureFormField.objects.filter(form=form).values_list("key", flat=True))


def field_data(**overrides):
    data = {
        "label": "Job title",
        "key": "job_title",
        "field_type": "text",
        "maps_to": "title",
        "required": "",
        "options": "",
        "help_text": "",
        "default_value": "",
    }
    data.update(overrides)
    return data


# --- forms ----------------------------------------------------------------------


def test_create_form_starts_with_email_and_name_fields(admin_client, org):
    campaign = CampaignFactory(organization=org, name="Webinar Q3")
    response = admin_client.post(
        f"{BASE}new/",
        {
            "name": "Webinar sign-up",
            "default_campaign": campaign.pk,
            "activity_kind": "webinar",
            "submit_label": "Save my seat",
            "success_message": "See you there!",
            "redirect_url": "",
            "consent_text": "",
            "min_fill_seconds": 3,
            "is_active": "on",
        },
    )
    with tenant_scope(org):
        form = CaptureForm.objects.get(name="Webinar sign-up")
    assert response.status_code == 302
    assert response["Location"] == f"{BASE}{form.pk}/"
    assert form.default_campaign == campaign and form.is_active
    assert keys(form) == ["email", "first_name", "last_name"]


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "ftp://files.example.com/x"])
def test_redirect_url_must_be_http(admin_client, capture_form, bad):
    response = admin_client.post(
        f"{BASE}{capture_form.pk}/settings/",
        {
            "name": "Newsletter",
            "activity_kind": "form_submit",
            "submit_label": "Go",
            "success_message": "Thanks",
            "redirect_url": bad,
            "min_fill_seconds": 2,
        },
    )
    assert response.status_code == 400
    assert "Enter a valid URL." in response.content.decode()


def test_duplicate_form_name_is_refused_per_org(admin_client, org, capture_form):
    response = admin_client.post(
        f"{BASE}new/",
        {
            "name": "Newsletter",
            "activity_kind": "form_submit",
            "submit_label": "Go",
            "success_message": "Thanks",
            "min_fill_seconds": 2,
        },
    )
    assert response.status_code == 400
    assert "A form with this name already exists." in response.content.decode()


def test_form_without_email_field_cannot_be_activated(admin_client, org):
    form = CaptureFormFactory(organization=org, name="Draft", is_active=False)
    CaptureFormFieldFactory(form=form, key="name", label="Name", maps_to="first_name")
    page = admin_client.get(f"{BASE}{form.pk}/").content.decode()
    assert "Add a field mapped to Email" in page
    response = admin_client.post(f"{BASE}{form.pk}/active/", {"active": "1"}, follow=True)
    assert "Add a field mapped to Email" in response.content.decode()
    form.refresh_from_db()
    assert form.is_active is False


def test_active_form_keeps_its_email_field(admin_client, capture_form):
    with tenant_scope(capture_form.organization):
        email = CaptureFormField.objects.get(form=capture_form, key="email")
    response = admin_client.post(f"{BASE}fields/{email.pk}/delete/", follow=True)
    assert "Deactivate the form first" in response.content.decode()
    assert "email" in keys(capture_form)
    admin_client.post(f"{BASE}{capture_form.pk}/active/", {"active": "0"})
    admin_client.post(f"{BASE}fields/{email.pk}/delete/")
    assert "email" not in keys(capture_form)


# --- fields ---------------------------------------------------------------------


def test_add_field(admin_client, capture_form):
    response = admin_client.post(f"{BASE}{capture_form.pk}/fields/new/", field_data())
    assert response.status_code == 302
    assert keys(capture_form) == ["email", "first_name", "role", "job_title"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"key": "role"}, "Another field of this form already uses the key “role”."),
        ({"key": "consent"}, "is used by the hosted form itself"),
        ({"key": "Job Title!"}, "Enter a valid “slug”"),
        ({"maps_to": "first_name"}, "“First name” already fills First name"),
        ({"field_type": "select", "maps_to": "custom"}, "A select field needs at least one option"),
        ({"field_type": "checkbox", "maps_to": "title"}, "Job title can only be filled by"),
        ({"field_type": "text", "maps_to": "do_not_call"}, "Do not call can only be filled by"),
    ],
)
def test_field_validation_errors(admin_client, capture_form, overrides, message):
    response = admin_client.post(f"{BASE}{capture_form.pk}/fields/new/", field_data(**overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert keys(capture_form) == ["email", "first_name", "role"]


def test_email_field_must_be_required(admin_client, capture_form):
    with tenant_scope(capture_form.organization):
        email = CaptureFormField.objects.get(form=capture_form, key="email")
    data = field_data(key="email", label="Email", field_type="email", maps_to="email")
    response = admin_client.post(f"{BASE}fields/{email.pk}/", data)
    assert response.status_code == 400
    assert "The field mapped to Email must be required." in response.content.decode()


def test_select_options_one_per_line(admin_client, capture_form):
    data = field_data(
        key="size", maps_to="custom", field_type="select", options=" 1-10\n\n11-50\n1-10\n51+ "
    )
    admin_client.post(f"{BASE}{capture_form.pk}/fields/new/", data)
    with tenant_scope(capture_form.organization):
        assert CaptureFormField.objects.get(key="size").options == ["1-10", "11-50", "51+"]


def test_edit_field(admin_client, capture_form):
    with tenant_scope(capture_form.organization):
        role = CaptureFormField.objects.get(form=capture_form, key="role")
    data = field_data(key="role", label="Your role", maps_to="title", required="on")
    assert admin_client.post(f"{BASE}fields/{role.pk}/", data).status_code == 302
    role.refresh_from_db()
    assert (role.label, role.maps_to, role.required) == ("Your role", "title", True)


def test_reorder_fields(admin_client, capture_form):
    with tenant_scope(capture_form.organization):
        role = CaptureFormField.objects.get(form=capture_form, key="role")
        email = CaptureFormField.objects.get(form=capture_form, key="email")
    admin_client.post(f"{BASE}fields/{role.pk}/move/", {"direction": "up"})
    assert keys(capture_form) == ["email", "role", "first_name"]
    response = admin_client.post(
        f"{BASE}fields/{email.pk}/move/", {"direction": "down"}, HTTP_HX_REQUEST="true"
    )
    # htmx gets the builder partial alone, already in the new order.
    html = response.content.decode()
    assert response.status_code == 200 and 'id="form-builder"' in html and "<html" not in html
    assert html.index("Role") < html.index("Email") < html.index("First name")
    assert keys(capture_form) == ["role", "email", "first_name"]
    with tenant_scope(capture_form.organization):
        ids = list(CaptureFormField.objects.filter(form=capture_form).values_list("pk", flat=True))
        builder.form_fields_reorder(form=capture_form, field_ids=list(reversed(ids)))
        assert keys(capture_form) == ["first_name", "email", "role"]
        with pytest.raises(builder.FormConfigError):
            builder.form_fields_reorder(form=capture_form, field_ids=ids[:2])


def test_live_preview_renders_the_draft_without_saving(admin_client, capture_form):
    draft = field_data(key="budget", label="Budget band", field_type="select", maps_to="custom")
    draft["options"] = "< $10k\n$10k+"
    response = admin_client.post(
        f"{BASE}{capture_form.pk}/preview/", {**draft, "field_id": ""}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="capture-form"' in html  # the public rendering itself
    assert "Budget band" in html and "&lt; $10k" in html
    assert "<html" not in html
    assert keys(capture_form) == ["email", "first_name", "role"]
    full = admin_client.get(f"{BASE}{capture_form.pk}/preview/").content.decode()
    assert "<html" in full and 'data-testid="capture-form"' in full and "Budget" not in full


def test_embed_snippets_carry_key_site_url_and_field_names(admin_client, capture_form, settings):
    settings.SITE_URL = "https://leads.customer-success.test/"
    html = admin_client.get(f"{BASE}{capture_form.pk}/").content.decode()
    action = f"https://leads.customer-success.test/f/{capture_form.key}/"
    assert f"&lt;iframe data-leadflow-form src=&quot;{action}&quot;" in html
    # The embed script that sizes the iframe, from the same site.
    script = "https://leads.customer-success.test/static/js/leadflow-embed.js"
    assert f"&lt;script src=&quot;{script}&quot; async&gt;" in html
    assert f"&lt;form method=&quot;post&quot; action=&quot;{action}&quot;" in html
    for name in ("email", "first_name", "role", "website"):
        assert f"name=&quot;{name}&quot;" in html


# --- lists and query counts ---------------------------------------------------------


def _forms_with_submissions(org, n_forms, per_form):
    campaign = CampaignFactory(organization=org)
    for i in range(n_forms):
        form = CaptureFormFactory(organization=org, default_campaign=campaign, name=f"F{i}")
        for j in range(per_form):
            outcome = SubmissionOutcome.values[j % len(SubmissionOutcome.values)]
            FormSubmissionFactory(form=form, outcome=outcome)


@pytest.mark.parametrize(("n_forms", "per_form"), [(1, 1), (6, 7)])
def test_form_list_query_count_is_constant(
    admin_client, org, other_org, n_forms, per_form, django_assert_num_queries
):
    _forms_with_submissions(org, n_forms, per_form)
    _forms_with_submissions(other_org, 2, 3)
    with django_assert_num_queries(4):
        response = admin_client.get(BASE)
    assert response.status_code == 200
    forms = list(response.context["capture_forms"])
    assert len(forms) == n_forms
    assert sum(f.n_total for f in forms) == n_forms * per_form


def test_form_list_counts_by_outcome(admin_client, org, capture_form):
    for outcome in ["created", "created", "spam", "merged"]:
        FormSubmissionFactory(form=capture_form, outcome=outcome)
    form = next(f for f in admin_client.get(BASE).context["capture_forms"])
    assert (form.n_total, form.n_created, form.n_spam, form.n_merged) == (4, 2, 1, 1)


@pytest.mark.parametrize("n", [2, 60])
def test_submission_list_query_count_is_constant(
    admin_client, org, capture_form, n, django_assert_num_queries
):
    lead = LeadFactory(organization=org)
    for i in range(n):
        FormSubmissionFactory(
            form=capture_form, payload={"email": f"s{i}@acme-corp.com"}, lead=lead
        )
    with django_assert_num_queries(8):
        response = admin_client.get(f"{BASE}{capture_form.pk}/submissions/")
    assert response.status_code == 200
    assert len(response.context["rows"]) == min(n, 50)


def test_submission_list_filters_by_outcome(admin_client, capture_form):
    FormSubmissionFactory(form=capture_form, outcome="spam", payload={"email": "bot@x.com"})
    FormSubmissionFactory(form=capture_form, outcome="created", payload={"email": "ok@y.com"})
    html = admin_client.get(f"{BASE}{capture_form.pk}/submissions/?outcome=spam").content.decode()
    assert "bot@x.com" in html and "ok@y.com" not in html


def test_submission_detail_links_its_lead(admin_client, org, capture_form):
    lead = LeadFactory(organization=org, first_name="Ada", last_name="Byron")
    submission = FormSubmissionFactory(form=capture_form, lead=lead, outcome="created")
    html = admin_client.get(f"{BASE}submissions/{submission.pk}/").content.decode()
    assert f"/o/acme/leads/{lead.pk}/" in html


def test_sales_rep_cannot_open_the_builder(client_for, sales_rep, capture_form):
    client = client_for(sales_rep)
    assert client.get(BASE).status_code == 403
    assert client.get(f"{BASE}{capture_form.pk}/").status_code == 403


def test_org_a_admin_cannot_reach_org_b_forms(admin_client, other_org, capture_form):
    with scopes_disabled():
        theirs = CaptureForm.objects.get(organization=other_org)
    assert admin_client.get(f"{BASE}{theirs.pk}/").status_code == 404
    assert admin_client.get(f"{BASE}{theirs.pk}/submissions/").status_code == 404
    assert admin_client.get(f"{BASE}{theirs.pk}/preview/").status_code == 404


def test_org_a_admin_cannot_change_org_b_fields(admin_client, other_org):
    theirs = CaptureFormFactory(organization=other_org)
    field = CaptureFormFieldFactory(form=theirs, field_type=FieldType.TEXT)
    assert admin_client.post(f"{BASE}fields/{field.pk}/delete/").status_code == 404
    assert (
        admin_client.post(f"{BASE}fields/{field.pk}/move/", {"direction": "up"}).status_code == 404
    )
