"""Organization-enforced two-factor authentication (allauth.mfa does the rest:
TOTP enrolment, recovery codes, the second step at log-in)."""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django_htmx.http import HttpResponseClientRedirect

from accounts.models import Organization

SETUP_URL_NAME = "mfa_activate_totp"


def user_has_two_factor(user) -> bool:
    return is_mfa_enabled(user, [Authenticator.Type.TOTP])


def enforce(request: HttpRequest, organization: Organization) -> HttpResponse | None:
    """Send a member of an organization that requires 2FA to set it up first.

    Only this organization's own setting counts: a user's other workspaces
    are unaffected. Returns None when the request may go on."""
    if not organization.require_two_factor or user_has_two_factor(request.user):
        return None
    messages.warning(
        request,
        f"{organization.name} requires two-factor authentication. "
        "Set up an authenticator app to continue.",
    )
    response = redirect(SETUP_URL_NAME)
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(response["Location"])
    return response
