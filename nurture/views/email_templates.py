"""Email templates: the index, the editor with its live preview (rendered for a
real lead, htmx) and the test send to yourself."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.errors import LeadflowError
from leadflow.tenancy import get_tenant_object_or_404
from nurture import selectors
from nurture.forms import PreviewForm, TemplateForm, TestSendForm, merge_fields
from nurture.models import EmailTemplate
from nurture.rendering import (
    TemplateInvalid,
    merge_context,
    render_parts,
    sanitize_html,
    validate_template,
)
from nurture.services import dispatch as dispatch_services
from nurture.services import sequences as template_services
from nurture.views.common import form_errors, settings_page, to

PREVIEW_UNSUBSCRIBE_URL = "#unsubscribe-preview"
STARTER_BODY = (
    '<p>Hi {{ first_name|default:"there" }},</p>\n'
    "<p>…</p>\n"
    "<p>Best,<br>{{ owner_name|default:org_name }}</p>\n"
)


def _template(template_id: int) -> EmailTemplate:
    return get_tenant_object_or_404(EmailTemplate, pk=template_id)


@require_GET
@org_view(Perm.MANAGE_NURTURE)
def template_list(request):
    context = {"tab": "templates", "templates": selectors.templates_for_index()}
    return render(request, "nurture/template_list.html", context)


def _preview(request, *, subject: str, body_html: str, body_text: str, lead_id: int | None):
    """Render what the lead would receive: sanitized HTML, merge fields filled in."""
    leads = selectors.preview_leads(selected_id=lead_id)
    lead = next((x for x in leads if x.pk == lead_id), leads[0] if leads else None)
    context = {"leads": leads, "lead": lead, "rendered": None, "error": ""}
    try:
        validate_template(subject, body_html, body_text)
        merge = merge_context(
            lead=lead, organization=request.organization, unsubscribe_url=PREVIEW_UNSUBSCRIBE_URL
        )
        context["rendered"] = render_parts(
            subject=subject, body_html=sanitize_html(body_html), body_text=body_text, context=merge
        )
    except TemplateInvalid as exc:
        context["error"] = str(exc)
    return context


def _editor(request, template: EmailTemplate | None):
    if template is None:
        form = TemplateForm(request.POST or None, initial={"body_html": STARTER_BODY})
    else:
        form = TemplateForm(request.POST or None, template=template)
    source = form.data if form.is_bound else form.initial
    preview = _preview(
        request,
        subject=source.get("subject", "") or "",
        body_html=source.get("body_html", "") or "",
        body_text=source.get("body_text", "") or "",
        lead_id=None,
    )
    context = {
        "tab": "templates",
        "template": template,
        "merge_fields": merge_fields(),
        "test_form": TestSendForm(initial={"to_email": request.user.email}),
        **preview,
    }
    return settings_page(
        request, form, service=template_services.template_save, instance={"template": template},
        noun="Template", then="template_edit", template="nurture/template_form.html",
        context=context,
    )  # fmt: skip


@org_view(Perm.MANAGE_NURTURE)
def template_create(request):
    return _editor(request, None)


@org_view(Perm.MANAGE_NURTURE)
def template_edit(request, template_id: int):
    return _editor(request, _template(template_id))


@require_POST
@org_view(Perm.MANAGE_NURTURE)
def template_preview(request):
    """htmx: the preview card for the editor's current text and the chosen lead."""
    form = PreviewForm(request.POST)
    if not form.is_valid():
        context = {"leads": [], "lead": None, "rendered": None, "error": form_errors(form)}
        return render(request, "nurture/partials/template_preview.html", context, status=400)
    data = form.cleaned_data
    context = _preview(
        request,
        subject=data["subject"],
        body_html=data["body_html"],
        body_text=data["body_text"],
        lead_id=data["lead"],
    )
    return render(request, "nurture/partials/template_preview.html", context)


@require_POST
@org_view(Perm.MANAGE_NURTURE)
def template_test_send(request, template_id: int):
    template = _template(template_id)
    form = TestSendForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_errors(form))
        return to(request, "template_edit", template_id=template.pk)
    lead = None
    if form.cleaned_data["lead"]:
        lead = selectors.live_leads().filter(pk=form.cleaned_data["lead"]).first()
    try:
        dispatch_services.template_test_send(
            template=template, to_email=form.cleaned_data["to_email"], lead=lead, actor=request.user
        )
    except LeadflowError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Test email queued to {form.cleaned_data['to_email']}. It shows in the outbox.",
        )
    return to(request, "template_edit", template_id=template.pk)
