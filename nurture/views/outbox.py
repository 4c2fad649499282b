"""The outbox: every email the organization sent or is about to send, filtered by
status; one message's headers, HTML (in a sandboxed frame) and text; and
"Send due now", which runs the dispatcher for this organization at once."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import render
from django.template.defaultfilters import pluralize
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.errors import LeadflowError
from leadflow.core.tenancy import get_tenant_object_or_404
from nurture import selectors, services
from nurture.channels.email import build_email
from nurture.models import MessageStatus
from nurture.previews import email_document
from nurture.views.common import email_document_view, paginate, to

STATUS_STYLES = {
    MessageStatus.QUEUED: "secondary",
    MessageStatus.SENDING: "info",
    MessageStatus.UNCONFIRMED: "dark",
    MessageStatus.SENT: "success",
    MessageStatus.FAILED: "danger",
    MessageStatus.BOUNCED: "warning",
}


@require_GET
@org_view(Perm.MANAGE_NURTURE)
def outbox(request):
    status = request.GET.get("status", "")
    if status not in MessageStatus.values:
        status = ""
    counts = selectors.outbox_counts()
    filters = [("", "All", counts["all"])] + [
        (value, label, counts[value]) for value, label in MessageStatus.choices
    ]
    context = {
        "tab": "outbox",
        "page": paginate(request, selectors.outbox(status=status)),
        "status": status,
        "filters": filters,
        "styles": STATUS_STYLES,
        "sender": selectors.sender_status(organization_id=request.organization.pk),
    }
    return render(request, "nurture/outbox.html", context)


@require_GET
@org_view(Perm.MANAGE_NURTURE)
def message_detail(request, message_id: int):
    message = get_tenant_object_or_404(selectors.message_detail(), pk=message_id)
    # The headers exactly as the sender builds them (no connection is opened).
    email = build_email(message)
    headers = [("From", email.from_email), ("To", ", ".join(email.to)), ("Subject", email.subject)]
    headers += list(email.extra_headers.items())
    context = {"tab": "outbox", "message": message, "headers": headers, "styles": STATUS_STYLES}
    return render(request, "nurture/message_detail.html", context)


@require_GET
@org_view(Perm.MANAGE_NURTURE)
@email_document_view
def message_body(request, message_id: int):
    """The HTML of one email as sent, for the message page's frame."""
    message = get_tenant_object_or_404(selectors.message_detail(), pk=message_id)
    return email_document(message.html, title=message.subject)


@require_POST
@org_view(Perm.MANAGE_NURTURE)
def message_resend(request, message_id: int):
    """Send an unconfirmed email again (same Message-ID), on the marketer's word."""
    message = get_tenant_object_or_404(selectors.message_detail(), pk=message_id)
    try:
        services.message_resend(message=message, actor=request.membership)
    except LeadflowError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The email is queued to be sent again.")
    return to(request, "message_detail", message_id=message.pk)


@require_POST
@org_view(Perm.MANAGE_NURTURE)
def outbox_dispatch(request):
    """Queue every step that is due now (what the minute-by-minute beat does)."""
    try:
        queued = services.dispatch_due(organization_id=request.organization.pk)
    except LeadflowError as exc:
        messages.error(request, str(exc))
    else:
        if queued:
            messages.success(request, f"{queued} email{pluralize(queued)} queued for sending.")
        else:
            messages.info(request, "Nothing is due right now.")
    return to(request, "outbox")
