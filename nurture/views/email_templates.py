"""Email templates: the index, the editor with its live preview (rendered for a
real lead, htmx; the email itself in a frame that loads its own URL, see
nurture/previews.py) and the test send to yourself."""

from __future__ import annotations

import html as html_lib
from urllib.parse import urlencode

from django.contrib import messages
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.errors import LeadflowError
from leadflow.core.tenancy import get_tenant_object_or_404
from nurture import selectors
from nurture.forms import PreviewForm, TemplateForm, TestSendForm, merge_fields
from nurture.models import EmailTemplate
from nurture.previews import draft_load, draft_slot, draft_store, email_document
from nurture.rendering import (
    Rendered,
    TemplateInvalid,
    merge_context,
    render_parts,
    sanitize_html,
    validate_template,
)
from nurture.services import dispatch as dispatch_services
from nurture.services import sequences as template_services
from nurture.views.common import (
    email_document_view,
    form_errors,
    lead_param,
    settings_page,
    to,
)

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


def _render(request, *, subject: str, body_html: str, body_text: str, lead) -> Rendered:
    """What the lead would receive: sanitized HTML, merge fields filled in."""
    merge = merge_context(
        lead=lead, organization=request.organization, unsubscribe_url=PREVIEW_UNSUBSCRIBE_URL
    )
    return render_parts(
        subject=subject, body_html=sanitize_html(body_html), body_text=body_text, context=merge
    )


def _frame_url(request, *, template_id: int | None, saved: bool, lead, draft: dict) -> str:
    """The preview frame's URL: the saved template's, or this person's draft's."""
    org_slug = request.organization.slug
    query: dict = {"lead": lead.pk} if lead else {}
    if saved and template_id:
        kwargs = {"org_slug": org_slug, "template_id": template_id}
        return f"{reverse('nurture:template_preview_html', kwargs=kwargs)}?{urlencode(query)}"
    slot = draft_slot(template_id)
    version = draft_store(
        organization_id=request.organization.pk, user_id=request.user.pk, slot=slot, **draft
    )
    query = {"template": slot, **query, "v": version}
    path = reverse("nurture:template_draft_html", kwargs={"org_slug": org_slug})
    return f"{path}?{urlencode(query)}"


def _preview(
    request,
    *,
    subject: str,
    body_html: str,
    body_text: str,
    lead_id: int | None,
    template_id: int | None = None,
    saved: bool = False,
):
    """The preview card: subject and text part here, the HTML in a frame of its own."""
    leads = selectors.preview_leads(selected_id=lead_id)
    lead = next((x for x in leads if x.pk == lead_id), leads[0] if leads else None)
    context = {"leads": leads, "lead": lead, "rendered": None, "error": "", "frame_url": ""}
    draft = {"subject": subject, "body_html": body_html, "body_text": body_text}
    try:
        validate_template(subject, body_html, body_text)
        context["rendered"] = _render(request, **draft, lead=lead)
    except TemplateInvalid as exc:
        context["error"] = str(exc)
    else:
        context["frame_url"] = _frame_url(
            request, template_id=template_id, saved=saved, lead=lead, draft=draft
        )
    return context


def _document(request, *, subject: str, body_html: str, body_text: str) -> str:
    """The email for the ?lead= of the frame URL, as a document of its own."""
    lead = selectors.preview_lead(lead_id=lead_param(request))
    try:
        rendered = _render(
            request, subject=subject, body_html=body_html, body_text=body_text, lead=lead
        )
    except TemplateInvalid as exc:
        return email_document(f"<p>{html_lib.escape(str(exc))}</p>", title="Preview")
    return email_document(rendered.html, title=rendered.subject)


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
        template_id=template.pk if template else None,
        saved=template is not None and not form.is_bound,
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
        template_id=data["template"],
    )
    return render(request, "nurture/partials/template_preview.html", context)


@require_GET
@org_view(Perm.MANAGE_NURTURE)
@email_document_view
def template_preview_html(request, template_id: int):
    """The preview frame of a saved template, for ?lead= (else the newest lead)."""
    template = _template(template_id)
    return _document(
        request,
        subject=template.subject,
        body_html=template.body_html,
        body_text=template.body_text,
    )


@require_GET
@org_view(Perm.MANAGE_NURTURE)
@email_document_view
def template_draft_html(request):
    """The editor's preview frame: this person's last draft of ?template= (an
    id or "new"), for ?lead=. Only its author can load it (the cache key)."""
    slot = request.GET.get("template", "")
    draft = draft_load(
        organization_id=request.organization.pk,
        user_id=request.user.pk,
        slot=draft_slot(int(slot) if slot.isdigit() and len(slot) < 19 else None),
    )
    if draft is None:
        return email_document(
            "<p>This preview has expired: type in the editor to see it again.</p>",
            title="Preview",
        )
    return _document(request, **draft)


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
            template=template, to_email=form.cleaned_data["to_email"], lead=lead
        )
    except LeadflowError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Test email queued to {form.cleaned_data['to_email']}. It shows in the outbox.",
        )
    return to(request, "template_edit", template_id=template.pk)


@require_POST
@org_view(Perm.MANAGE_NURTURE)
def template_delete(request, template_id: int):
    template = _template(template_id)
    try:
        template_services.template_delete(template=template, actor=request.membership)
    except LeadflowError as exc:
        messages.error(request, str(exc))
        return to(request, "template_edit", template_id=template.pk)
    messages.success(request, f"Template “{template.name}” deleted.")
    return to(request, "template_list")
