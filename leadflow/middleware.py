"""Tenancy middleware: /o/<org_slug>/... resolves the organization, checks the
membership and runs the view *and its template rendering* inside the scope."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.urls import Resolver404, resolve
from django_scopes import scope

from accounts import two_factor
from accounts.models import Membership

ORG_PATH_PREFIX = "/o/"


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.organization = None
        request.membership = None
        if not request.path_info.startswith(ORG_PATH_PREFIX):
            # Only /o/<org_slug>/ routes name an organization (a test walks the
            # URL conf): the API and public pages skip resolving the URL twice.
            return self.get_response(request)
        try:
            match = resolve(request.path_info)
        except Resolver404:
            match = None
        org_slug = match.kwargs.get("org_slug") if match else None
        if org_slug is None:
            # Outside any organization no scope is active: tenant queries fail closed.
            return self.get_response(request)

        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        membership = (
            Membership.objects.select_related("organization", "user")
            .filter(organization__slug=org_slug, user=request.user, is_active=True)
            .first()
        )
        if membership is None:
            # Not a member (or no such org): the same answer, so slugs can't be probed.
            raise Http404("No such organization")
        if (setup := two_factor.enforce(request, membership.organization)) is not None:
            return setup
        request.organization = membership.organization
        request.membership = membership
        with scope(organization=membership.organization_id):
            response = self.get_response(request)
            # TemplateResponses render lazily; make sure that happens in scope too.
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
        return response
