"""Replies for admins: the inbound address and webhook (secret shown once, on
rotation), refused webhook calls, and the unmatched replies (attach or dismiss)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.errors import LeadflowError
from leadflow.core.tenancy import get_tenant_object_or_404
from nurture import selectors
from nurture.forms import InboundAttachForm
from nurture.models import InboundMail, InboundStatus
from nurture.services import inbound as inbound_services
from nurture.services.direct import mailbox_get, reply_address
from nurture.views.common import form_errors, paginate, to


@require_http_methods(["GET", "POST"])
@org_view(Perm.MANAGE_ORGANIZATION)
def inbound_settings(request):
    """POST rotates the signing secret and shows the new one, once."""
    secret = None
    if request.method == "POST":
        secret = inbound_services.mailbox_rotate(
            organization_id=request.organization.pk, actor=request.membership
        )
    mailbox = mailbox_get(organization_id=request.organization.pk)
    context = {
        "tab": "inbound",
        "mailbox": mailbox,
        "address": reply_address(mailbox=mailbox),
        "plus_example": reply_address(mailbox=mailbox, thread_token="<thread>"),
        "webhook_url": settings.SITE_URL.rstrip("/") + inbound_services.webhook_path(mailbox),
        "secret": secret,
        "timestamp_header": inbound_services.TIMESTAMP_HEADER,
        "signature_header": inbound_services.SIGNATURE_HEADER,
        "max_age": settings.INBOUND_MAIL_MAX_AGE_SECONDS,
        "rejections": selectors.inbound_rejections(),
        "unmatched_count": selectors.inbound_replies(status=InboundStatus.UNMATCHED).count(),
    }
    return render(request, "nurture/inbound_settings.html", context)


@require_GET
@org_view(Perm.MANAGE_ORGANIZATION)
def inbound_unmatched(request):
    page = paginate(request, selectors.inbound_replies(status=InboundStatus.UNMATCHED))
    return render(request, "nurture/inbound_unmatched.html", {"tab": "inbound", "page": page})


def _unmatched(inbound_id: int) -> InboundMail:
    return get_tenant_object_or_404(
        selectors.inbound_replies(status=InboundStatus.UNMATCHED), pk=inbound_id
    )


@require_POST
@org_view(Perm.MANAGE_ORGANIZATION)
def inbound_attach(request, inbound_id: int):
    inbound = _unmatched(inbound_id)
    form = InboundAttachForm(request.POST)
    try:
        if not form.is_valid():
            raise LeadflowError(form_errors(form))
        inbound_services.inbound_attach(
            inbound=inbound, email=form.cleaned_data["email"], actor=request.membership
        )
    except LeadflowError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The reply is on the lead's timeline now.")
    return to(request, "inbound_unmatched")


@require_POST
@org_view(Perm.MANAGE_ORGANIZATION)
def inbound_dismiss(request, inbound_id: int):
    try:
        inbound_services.inbound_dismiss(inbound=_unmatched(inbound_id), actor=request.membership)
    except LeadflowError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Reply dismissed.")
    return to(request, "inbound_unmatched")
