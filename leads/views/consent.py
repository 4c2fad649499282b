"""The public double opt-in link: /c/<token>/ names its organization by a signed
token. Opening it shows what is being confirmed; consent is recorded by the
button (a POST), so mail scanners that fetch links do not confirm for a person."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from accounts.decorators import public_view
from leadflow.core.clientip import client_ip
from leads.services import consent
from leads.services.capture import ip_digest


@public_view
@require_http_methods(["GET", "POST"])
def consent_confirm(request: HttpRequest, token: str) -> HttpResponse:
    try:
        confirmation = consent.confirmation_from_token(token)
        if request.method == "POST":
            confirmation = consent.consent_confirm(
                token=token, ip_hash=ip_digest(client_ip(request))
            )
    except consent.ConsentError as exc:
        return render(
            request, "leads/public/consent_confirm.html", {"problem": str(exc)}, status=400
        )
    context = {"confirmation": confirmation, "confirmed": confirmation.confirmed_at is not None}
    return render(request, "leads/public/consent_confirm.html", context)
