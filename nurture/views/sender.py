"""Sender identity (admins): from-name and from-address with its verification,
reply-to, postal address, and the DNS records to publish (SPF, DKIM, DMARC)."""

from __future__ import annotations

from django.contrib import messages
from django.views.decorators.http import require_POST

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.formpage import form_page
from nurture import selectors
from nurture.forms import SenderForm
from nurture.services import sender as sender_services
from nurture.views.common import to


@org_view(Perm.MANAGE_ORGANIZATION)
def sender_settings(request):
    status = selectors.sender_status(organization_id=request.organization.pk, records=True)
    cfg = status.settings
    initial = {
        "from_name": cfg.from_name,
        "from_email": cfg.from_email,
        "reply_to": cfg.reply_to,
        "physical_address": cfg.physical_address,
    }
    form = SenderForm(request.POST or None, initial=initial)

    def save(form):
        return sender_services.sender_save(
            data=form.to_data(), actor=request.membership, organization_id=request.organization.pk
        )

    def saved(cfg):
        note = "Sender identity saved."
        if cfg.from_email and not cfg.from_email_verified_at:
            note += f" A confirmation link is on its way to {cfg.from_email}."
        return note, to(request, "sender_settings")

    context = {"tab": "sender", "status": status}
    return form_page(
        request, form, save=save, saved=saved, template="nurture/sender_settings.html",
        context=context,
    )  # fmt: skip


@require_POST
@org_view(Perm.MANAGE_ORGANIZATION)
def sender_resend(request):
    try:
        cfg = sender_services.sender_verification_request(organization_id=request.organization.pk)
    except sender_services.SenderError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"A new confirmation link is on its way to {cfg.from_email}.")
    return to(request, "sender_settings")
