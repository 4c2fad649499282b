"""Small helpers shared by the nurture pages."""

from __future__ import annotations

from functools import wraps

from csp.decorators import csp
from django.core.paginator import Page, Paginator
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.clickjacking import xframe_options_sameorigin

from leadflow.core.formpage import form_page
from nurture.previews import EMAIL_DOCUMENT_POLICY

PER_PAGE = 50


def paginate(request, queryset, per_page: int = PER_PAGE) -> Page:
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def to(request, name: str, **kwargs):
    """Redirect to a nurture page of the current organization."""
    return redirect(f"nurture:{name}", org_slug=request.organization.slug, **kwargs)


def form_errors(form) -> str:
    """All of a form's messages on one line (for a flash message)."""
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def settings_page(
    request, form, *, service, instance: dict, noun: str, then: str, template: str, context: dict
):
    """form_page for the services that share the (instance, data, actor,
    organization_id) call; on success it opens the `then` page of the object."""
    kwarg = then.split("_")[0] + "_id"  # "list_detail" -> list_id

    def save(form):
        org_id = request.organization.pk
        return service(
            **instance, data=form.to_data(), actor=request.membership, organization_id=org_id
        )

    def saved(obj):
        return f"{noun} “{obj.name}” saved.", to(request, then, **{kwarg: obj.pk})

    return form_page(request, form, save=save, saved=saved, template=template, context=context)


def email_document_view(view):
    """A view that answers an email as a document for our own preview frames:
    the view returns the HTML; this serves it under the email policy (inline
    styles and images, no script, sandboxed), frameable by our pages only, and
    never cached (a draft changes with each keystroke)."""

    @csp(EMAIL_DOCUMENT_POLICY)
    @xframe_options_sameorigin
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = HttpResponse(
            view(request, *args, **kwargs), content_type="text/html; charset=utf-8"
        )
        response["Cache-Control"] = "private, no-store"
        return response

    return wrapper


def lead_param(request) -> int | None:
    """The ?lead= of a preview URL (anything else than an id is no choice)."""
    value = request.GET.get("lead", "")
    return int(value) if value.isdigit() and 0 < len(value) < 19 else None
