"""Public email endpoints: unsubscribe (confirm on GET, act on POST — also the
RFC 8058 one-click target), the open pixel and the click redirect.

The tenant comes from the signed token (nurture.tokens); a tampered, expired
or foreign token gets a clear 400/404 page and changes nothing.
"""

from __future__ import annotations

import base64

from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from accounts.decorators import public_view
from accounts.models import Organization
from nurture import services
from nurture.services import sender
from nurture.tokens import BadToken

PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
UNSUBSCRIBE_REASONS = [
    ("too_many", "I get too many emails"),
    ("not_relevant", "The content is not relevant to me"),
    ("never_signed_up", "I never signed up"),
    ("other", "Another reason"),
]
_REASON_LABELS = dict(UNSUBSCRIBE_REASONS)


def _problem(request, status: int, *, expired_or_bad: bool):
    if expired_or_bad:
        title, message = (
            "This link is not valid",
            "It may have been shortened by your email program or it has expired. "
            "Use the link of a recent email instead.",
        )
    else:
        title, message = ("Email not found", "The email this link belongs to no longer exists.")
    return render(
        request,
        "nurture/public/token_error.html",
        {"title": title, "message": message},
        status=status,
    )


def _org_name(organization_id: int) -> str:
    return Organization.objects.filter(pk=organization_id).values_list("name", flat=True).first()


@public_view
@csrf_exempt  # the signed token is the credential; mail clients post without a session
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    try:
        message = services.unsubscribe_target(token=token)
        if request.method == "POST":
            reason = _REASON_LABELS.get(request.POST.get("reason", ""), "")
            comment = request.POST.get("comment", "").strip()
            if request.POST.get("List-Unsubscribe") == "One-Click":
                reason = "One-click unsubscribe from the email program"
            reason = " — ".join(part for part in (reason, comment) if part)
            message = services.unsubscribe(token=token, reason=reason)
    except BadToken:
        return _problem(request, 400, expired_or_bad=True)
    except services.TrackingError:
        return _problem(request, 404, expired_or_bad=False)
    context = {"email": message.to_email, "org_name": _org_name(message.organization_id)}
    if request.method == "POST":
        return render(request, "nurture/public/unsubscribe_done.html", context)
    context["reasons"] = UNSUBSCRIBE_REASONS
    return render(request, "nurture/public/unsubscribe_confirm.html", context)


def _pixel(status: int = 200) -> HttpResponse:
    response = HttpResponse(PIXEL_GIF, content_type="image/gif", status=status)
    response["Cache-Control"] = "no-store, private"
    return response


@public_view
@require_GET
def track_open(request, token: str):
    try:
        services.track_open(token=token, user_agent=request.headers.get("User-Agent", ""))
    except BadToken:
        return _pixel(400)
    except services.TrackingError:
        return _pixel(404)
    return _pixel()


@public_view
@never_cache
@require_GET
def track_click(request, token: str):
    try:
        target = services.track_click(token=token, user_agent=request.headers.get("User-Agent", ""))
    except BadToken:
        return _problem(request, 400, expired_or_bad=True)
    except services.TrackingError:
        return _problem(request, 404, expired_or_bad=False)
    return HttpResponseRedirect(target)


@public_view
@csrf_exempt  # the signed token is the credential (the clicker may have no session)
@never_cache
@require_http_methods(["GET", "POST"])
def sender_verify(request, token: str):
    """Confirm on GET (a link scanner's fetch verifies nothing), verify on POST."""
    try:
        if request.method == "POST":
            cfg = sender.sender_verify(token=token)
        else:
            cfg = sender.sender_verification_target(token=token)
    except sender.SenderError as exc:
        context = {"title": "This link cannot confirm the sender", "message": str(exc)}
        return render(request, "nurture/public/token_error.html", context, status=400)
    context = {
        "address": cfg.from_email,
        "org_name": _org_name(cfg.organization_id),
        "done": request.method == "POST",
    }
    return render(request, "nurture/public/sender_verify.html", context)
