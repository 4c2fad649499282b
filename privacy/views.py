"""Privacy pages for admins: find what is held about a person (by email or from
the lead page), export it, erase it after a confirmation; the consent ledger as
CSV; retention; the audit log. A person's email travels in POST bodies only,
never in a URL (access logs)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.pagination import request_page
from leadflow.core.tenancy import get_tenant_object_or_404
from leads.models import Lead
from privacy import selectors, services
from privacy.forms import PersonForm, RetentionForm

PER_PAGE = 50
ERASURE_EFFECT = {
    selectors.DELETE: "Deleted",
    selectors.SCRUB: "Kept for report totals, personal data removed",
    selectors.KEEP: "Kept (holds no personal data)",
}


def details_text(data: Any, prefix: str = "") -> str:
    """An entry's details as one line a person reads: "counts leads 2 · suppressed 1"."""
    if isinstance(data, dict):
        parts = [details_text(value, f"{prefix}{key} ") for key, value in data.items()]
        return " · ".join(p for p in parts if p)
    if isinstance(data, list):
        return f"{prefix}{', '.join(str(item) for item in data)}"
    return f"{prefix}{data}"


def _target(request: HttpRequest) -> tuple[str, Lead | None]:
    """The person a request names: `lead` (an id of this organization, else 404) or `email`."""
    source = request.POST if request.method == "POST" else request.GET
    lead_id = source.get("lead", "")
    if lead_id:
        return "", get_tenant_object_or_404(Lead, pk=lead_id)
    form = PersonForm(source)
    return (form.cleaned_data["email"] if form.is_valid() else ""), None


@org_view(Perm.MANAGE_ORGANIZATION)
def privacy_index(request: HttpRequest) -> HttpResponse:
    settings = selectors.privacy_settings(organization=request.organization)
    retention = RetentionForm(request.POST or None, instance=settings)
    if request.method == "POST" and retention.is_valid():
        services.privacy_settings_update(
            organization=request.organization,
            actor=request.membership,
            retention_days=retention.cleaned_data["retention_days"],
        )
        messages.success(request, "Retention saved.")
        return redirect("privacy:index", org_slug=request.organization.slug)
    context = {"person_form": PersonForm(), "retention_form": retention}
    return render(request, "privacy/index.html", context, status=400 if retention.errors else 200)


def _person_page(request, email: str, lead: Lead | None, *, confirm: bool = False):
    person = selectors.person_find(email=email, lead=lead)
    context = {
        "email": email,
        "lead": lead,
        "person": person,
        "found": person.found,
        "counts": [
            (name.replace("_", " ").capitalize(), count, ERASURE_EFFECT[erase])
            for name, count, erase in (selectors.person_summary(person) if person.found else [])
            if count
        ],
        "confirm": confirm,
        "person_form": PersonForm(initial={"email": email}),
    }
    return render(request, "privacy/person.html", context)


@org_view(Perm.MANAGE_ORGANIZATION)
def person_detail(request: HttpRequest) -> HttpResponse:
    email, lead = _target(request)
    if not email and lead is None:
        return _no_target(request)
    return _person_page(request, email, lead)


def _no_target(request: HttpRequest) -> HttpResponse:
    messages.error(request, "Enter the person's email address.")
    return redirect("privacy:index", org_slug=request.organization.slug)


@require_POST
@org_view(Perm.MANAGE_ORGANIZATION)
def person_export_view(request: HttpRequest) -> HttpResponse:
    email, lead = _target(request)
    if not email and lead is None:
        return _no_target(request)
    fmt = "csv" if request.POST.get("format") == "csv" else "json"
    try:
        filename, body = services.person_export(
            organization=request.organization,
            actor=request.membership,
            email=email,
            lead=lead,
            fmt=fmt,
        )
    except services.PersonUnknown as exc:
        messages.info(request, str(exc))
        return redirect("privacy:index", org_slug=request.organization.slug)
    content_type = "application/zip" if fmt == "csv" else "application/json"
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@org_view(Perm.MANAGE_ORGANIZATION)
def person_erase_view(request: HttpRequest) -> HttpResponse:
    email, lead = _target(request)
    if not email and lead is None:
        return _no_target(request)
    if request.POST.get("confirm") != "yes":
        return _person_page(request, email, lead, confirm=True)
    try:
        result = services.person_erase(
            organization=request.organization, actor=request.membership, email=email, lead=lead
        )
    except services.PersonUnknown as exc:
        messages.info(request, str(exc))
    else:
        total = sum(result.counts.values())
        messages.success(
            request,
            f"Erased: {total} records. The address is suppressed: it will not be taken in "
            "or emailed again.",
        )
    return redirect("privacy:index", org_slug=request.organization.slug)


@require_GET
@org_view(Perm.MANAGE_ORGANIZATION)
def consent_ledger_csv(request: HttpRequest) -> HttpResponse:
    body = services.consent_ledger_export(
        organization=request.organization, actor=request.membership
    )
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="consent-ledger.csv"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@org_view(Perm.MANAGE_ORGANIZATION)
def audit_log_view(request: HttpRequest) -> HttpResponse:
    action = request.GET.get("action", "")[:60]
    events = selectors.audit_log(organization=request.organization, action=action)
    page = request_page(request, events, per_page=PER_PAGE)
    for event in page:
        event.details = details_text(event.data)
    context = {
        "page": page,
        "actions": selectors.audit_actions(organization=request.organization),
        "action": action,
    }
    return render(request, "privacy/audit_log.html", context)
