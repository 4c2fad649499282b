"""Views declare the permission they need here; nothing else grants access.

`org_view(Perm.X)` wraps a view mounted under /o/<org_slug>/: the tenancy
middleware has already resolved the organization and the membership (404 for
non-members); this checks the role (403 when it lacks the permission).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from accounts.permissions import Perm


def org_view(permission: Perm) -> Callable:
    if permission in (Perm.PUBLIC, Perm.AUTHENTICATED):
        raise ValueError("org_view needs an organization permission")

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request, *args, org_slug: str, **kwargs):
            membership = getattr(request, "membership", None)
            if membership is None:
                # Fail closed if the middleware did not run for this URL.
                raise PermissionDenied("No organization context")
            if not membership.has_perm(permission):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapper.required_permission = permission
        return wrapper

    return decorate


def public_view(view: Callable) -> Callable:
    view.required_permission = Perm.PUBLIC
    return view


def authenticated_view(view: Callable) -> Callable:
    wrapped = login_required(view)
    wrapped.required_permission = Perm.AUTHENTICATED
    return wrapped
