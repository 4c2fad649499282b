"""Capture form builder (MANAGE_FORMS): the form list, settings, the fields editor
with its live preview, embed snippets, and each form's submissions."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.tenancy import get_tenant_object_or_404
from leads.forms_capture import (
    CaptureFormFieldForm,
    CaptureFormSettingsForm,
    PublicCaptureForm,
    honeypot_name,
)
from leads.models import (
    CaptureForm,
    CaptureFormField,
    FieldType,
    FormSubmission,
    SubmissionOutcome,
)
from leads.services import capture
from leads.services import capture_forms as builder
from leads.services.capture_forms import FormConfigError

SUBMISSIONS_PER_PAGE = 50
OUTCOME_BADGES = {
    SubmissionOutcome.PENDING: "secondary",
    SubmissionOutcome.CREATED: "success",
    SubmissionOutcome.MERGED: "primary",
    SubmissionOutcome.JUNK: "warning",
    SubmissionOutcome.SPAM: "dark",
    SubmissionOutcome.INVALID: "danger",
}


# --- reads --------------------------------------------------------------------


def forms_with_counts() -> QuerySet[CaptureForm]:
    """The organization's forms with submission counts by outcome (one query)."""
    counts = {
        f"n_{outcome}": Count("submissions", filter=Q(submissions__outcome=outcome))
        for outcome in SubmissionOutcome.values
    }
    return (
        CaptureForm.objects.select_related("default_campaign")
        .annotate(n_total=Count("submissions"), **counts)
        .order_by("name")
    )


def outcome_counts(*, form: CaptureForm) -> dict[str, int]:
    rows = (
        FormSubmission.objects.filter(form=form)
        .order_by()
        .values_list("outcome")
        .annotate(n=Count("pk"))
    )
    counts = dict.fromkeys(SubmissionOutcome.values, 0)
    counts.update(dict(rows))
    return counts


def _outcome_tabs(counts: dict[str, int]) -> list[dict]:
    return [
        {"value": o.value, "label": o.label, "count": counts.get(o.value, 0)}
        for o in SubmissionOutcome
    ]


# --- helpers ------------------------------------------------------------------


def _add_errors(django_form, exc: FormConfigError) -> None:
    for name, message in exc.errors.items():
        django_form.add_error(name if name in django_form.fields else None, message)


def hosted_url(form: CaptureForm) -> str:
    path = reverse("leads:hosted_form", kwargs={"form_key": form.key})
    return settings.SITE_URL.rstrip("/") + path


def embed_snippets(form: CaptureForm, fields: list[CaptureFormField]) -> dict[str, str]:
    """The iframe and the plain HTML form a customer pastes into their site."""
    context = {
        "capture_form": form,
        "fields": fields,
        "url": hosted_url(form),
        "embed_script": settings.SITE_URL.rstrip("/") + static("js/leadflow-embed.js"),
        "honeypot": honeypot_name(fields),
        "hidden_type": FieldType.HIDDEN,
    }
    return {
        "iframe": render_to_string("leads/partials/form_embed_iframe.html", context).strip(),
        "html": render_to_string("leads/partials/form_embed_html.html", context).strip(),
    }


def _preview_context(form: CaptureForm, fields: list[CaptureFormField]) -> dict:
    return {
        "capture_form": form,
        "form": PublicCaptureForm(fields=fields, consent_text=form.consent_text),
        "honeypot": honeypot_name(fields),
        "preview": True,
    }


def _builder_context(form: CaptureForm) -> dict:
    fields = capture.form_fields(form=form)
    return {
        "capture_form": form,
        "fields": fields,
        "problems": builder.activation_problems(fields=fields),
        "snippets": embed_snippets(form, fields),
        "hosted_url": hosted_url(form),
        "outcome_tabs": _outcome_tabs(outcome_counts(form=form)),
        **{f"preview_{k}": v for k, v in _preview_context(form, fields).items()},
    }


def _get_form(form_id: int) -> CaptureForm:
    return get_tenant_object_or_404(
        CaptureForm.objects.select_related("default_campaign"), pk=form_id
    )


def _get_field(field_id: int) -> CaptureFormField:
    return get_tenant_object_or_404(CaptureFormField.objects.select_related("form"), pk=field_id)


def _back_to_builder(request, form: CaptureForm):
    """htmx swaps the fields editor in place; without JavaScript, reload the page."""
    if request.htmx:
        return render(request, "leads/form_detail.html#builder", _builder_context(form))
    return redirect("leads:form_detail", org_slug=request.organization.slug, form_id=form.pk)


# --- forms --------------------------------------------------------------------


@org_view(Perm.MANAGE_FORMS)
def form_list(request):
    return render(
        request,
        "leads/form_list.html",
        {"capture_forms": forms_with_counts(), "outcomes": SubmissionOutcome},
    )


def _write(request, django_form, write: Callable[[], CaptureForm | CaptureFormField], message):
    """A valid POST runs the builder write and goes back to the form's builder;
    its FormConfigError becomes errors on the page. None means: show the page."""
    if request.method != "POST" or not django_form.is_valid():
        return None
    try:
        saved = write()
    except FormConfigError as exc:
        _add_errors(django_form, exc)
        return None
    messages.success(request, message(saved) if callable(message) else message)
    form_id = saved.form_id if isinstance(saved, CaptureFormField) else saved.pk
    return redirect("leads:form_detail", org_slug=request.organization.slug, form_id=form_id)


def _settings_page(request, form, capture_form: CaptureForm | None):
    context = {"form": form, "capture_form": capture_form}
    return render(request, "leads/form_edit.html", context, status=400 if form.errors else 200)


@org_view(Perm.MANAGE_FORMS)
def form_create(request):
    form = CaptureFormSettingsForm(request.POST or None, submit_label="Create form")
    done = _write(
        request,
        form,
        lambda: builder.capture_form_create(organization=request.organization, **form.cleaned_data),
        lambda created: f"“{created.name}” is ready with email and name fields. Add yours.",
    )
    return done or _settings_page(request, form, None)


@org_view(Perm.MANAGE_FORMS)
def form_detail(request, form_id: int):
    return render(request, "leads/form_detail.html", _builder_context(_get_form(form_id)))


@org_view(Perm.MANAGE_FORMS)
def form_edit(request, form_id: int):
    capture_form = _get_form(form_id)
    form = CaptureFormSettingsForm(request.POST or None, instance=capture_form)
    done = _write(
        request,
        form,
        lambda: builder.capture_form_update(form=_get_form(form_id), **form.cleaned_data),
        "Form settings saved.",
    )
    # A bound ModelForm changed the instance in memory; the page shows the saved one.
    return done or _settings_page(request, form, _get_form(form_id))


@require_POST
@org_view(Perm.MANAGE_FORMS)
def form_toggle_active(request, form_id: int):
    capture_form = _get_form(form_id)
    active = request.POST.get("active") == "1"
    try:
        builder.capture_form_set_active(form=capture_form, active=active)
    except FormConfigError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"“{capture_form.name}” is {'live' if active else 'closed to new submissions'}.",
        )
    return redirect("leads:form_detail", org_slug=request.organization.slug, form_id=form_id)


@org_view(Perm.MANAGE_FORMS)
def form_preview(request, form_id: int):
    """The real public form rendering. POST carries the field being edited (not
    saved) so the preview follows the editor as the admin types."""
    capture_form = _get_form(form_id)
    fields = capture.form_fields(form=capture_form)
    if request.method == "POST":
        field_id = request.POST.get("field_id", "")
        instance = next((f for f in fields if str(f.pk) == field_id), None)
        editor = CaptureFormFieldForm(
            request.POST, capture_form=capture_form, instance=instance or CaptureFormField()
        )
        draft = editor.draft()
        fields = [draft if f is instance else f for f in fields]
        if instance is None:
            fields.append(draft)
    context = _preview_context(capture_form, fields)
    if request.method == "POST" or request.htmx:
        return render(request, "leads/partials/form_preview.html", context)
    return render(request, "leads/form_preview_page.html", context)


# --- fields -------------------------------------------------------------------


def _field_page(request, capture_form: CaptureForm, editor, field=None):
    fields = capture.form_fields(form=capture_form)
    context = {
        "capture_form": capture_form,
        "editor": editor,
        "field": field,
        **_preview_context(capture_form, fields),
    }
    status = 400 if editor.errors else 200
    return render(request, "leads/form_field_edit.html", context, status=status)


@org_view(Perm.MANAGE_FORMS)
def field_create(request, form_id: int):
    capture_form = _get_form(form_id)
    editor = CaptureFormFieldForm(request.POST or None, capture_form=capture_form)
    done = _write(
        request,
        editor,
        lambda: builder.form_field_create(form=capture_form, **editor.values()),
        lambda field: f"Field “{field.label}” added.",
    )
    return done or _field_page(request, capture_form, editor)


@org_view(Perm.MANAGE_FORMS)
def field_edit(request, field_id: int):
    field = _get_field(field_id)
    editor = CaptureFormFieldForm(request.POST or None, capture_form=field.form, instance=field)
    done = _write(
        request,
        editor,
        lambda: builder.form_field_update(field=_get_field(field_id), **editor.values()),
        "Field saved.",
    )
    return done or _field_page(request, field.form, editor, _get_field(field_id))


@require_POST
@org_view(Perm.MANAGE_FORMS)
def field_delete(request, field_id: int):
    field = _get_field(field_id)
    try:
        builder.form_field_delete(field=field)
    except FormConfigError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Field “{field.label}” deleted; past submissions keep it.")
    return _back_to_builder(request, field.form)


@require_POST
@org_view(Perm.MANAGE_FORMS)
def field_move(request, field_id: int):
    field = _get_field(field_id)
    try:
        builder.form_field_move(field=field, direction=request.POST.get("direction", ""))
    except FormConfigError as exc:
        messages.error(request, str(exc))
    return _back_to_builder(request, field.form)


# --- submissions --------------------------------------------------------------


@org_view(Perm.MANAGE_FORMS)
def submission_list(request, form_id: int):
    capture_form = _get_form(form_id)
    outcome = request.GET.get("outcome", "")
    qs = FormSubmission.objects.filter(form=capture_form).select_related("lead")
    if outcome in SubmissionOutcome.values:
        qs = qs.filter(outcome=outcome)
    else:
        outcome = ""
    page = Paginator(qs.order_by("-received_at", "-pk"), SUBMISSIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    fields = capture.form_fields(form=capture_form)
    email_key = next((f.key for f in fields if f.maps_to == "email"), "email")
    rows = [
        {"submission": s, "email": s.payload.get(email_key, ""), "badge": OUTCOME_BADGES[s.outcome]}
        for s in page
    ]
    counts = outcome_counts(form=capture_form)
    return render(
        request,
        "leads/form_submission_list.html",
        {
            "capture_form": capture_form,
            "page": page,
            "rows": rows,
            "outcome": outcome,
            "tabs": _outcome_tabs(counts),
            "total": sum(counts.values()),
        },
    )


@org_view(Perm.MANAGE_FORMS)
def submission_detail(request, submission_id: int):
    submission = get_tenant_object_or_404(
        FormSubmission.objects.select_related("form", "lead"), pk=submission_id
    )
    payload = [
        (key, ", ".join(map(str, value)) if isinstance(value, list) else value)
        for key, value in (submission.payload or {}).items()
    ]
    return render(
        request,
        "leads/form_submission_detail.html",
        {
            "submission": submission,
            "capture_form": submission.form,
            "payload": payload,
            "badge": OUTCOME_BADGES.get(submission.outcome, "secondary"),
        },
    )
