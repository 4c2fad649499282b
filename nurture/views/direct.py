"""Email from the lead page: compose with merge fields, preview, send (as the rep)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.errors import LeadflowError
from leadflow.core.tenancy import get_tenant_object_or_404
from nurture import selectors
from nurture.forms import DirectEmailForm
from nurture.models import DirectEmailStatus
from nurture.rendering import MERGE_FIELDS
from nurture.services import direct as direct_services

STATUS_STYLES = {
    DirectEmailStatus.QUEUED: "secondary",
    DirectEmailStatus.SENDING: "info",
    DirectEmailStatus.DEFERRED: "warning",
    DirectEmailStatus.UNCONFIRMED: "dark",
    DirectEmailStatus.SENT: "success",
    DirectEmailStatus.FAILED: "danger",
}
MERGE_HELP = [(key, label) for key, label in MERGE_FIELDS.items() if key != "unsubscribe_url"]


@require_http_methods(["GET", "POST"])
@org_view(Perm.WORK_LEADS)
def lead_email(request, lead_id: int):
    """GET: the compose form. POST with action=preview: the same page with the
    email as the lead will get it; action=send: queue it and go back to the lead."""
    lead = get_tenant_object_or_404(
        selectors.emailable_leads(membership=request.membership), pk=lead_id
    )
    form = DirectEmailForm(request.POST or None)
    draft, status = None, 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if request.POST.get("action") == "send":
                direct_services.direct_email_send(
                    lead=lead, actor=request.membership, subject=data["subject"], body=data["body"]
                )
                messages.success(request, f"Email to {lead.email} queued for sending.")
                return redirect(
                    "leads:lead_detail", org_slug=request.organization.slug, lead_id=lead.pk
                )
            draft = direct_services.direct_render(
                lead=lead, organization=request.organization, **data
            )
        except LeadflowError as exc:
            form.add_error(None, str(exc))
    if form.errors:
        status = 400
    context = {
        "lead": lead,
        "form": form,
        "draft": draft,
        "merge_fields": MERGE_HELP,
        "sent": selectors.lead_direct_emails(lead_id=lead.pk),
        "styles": STATUS_STYLES,
        "sender": direct_services.direct_sender(
            sender=request.membership, organization=request.organization
        ),
    }
    return render(request, "nurture/lead_email.html", context, status=status)
