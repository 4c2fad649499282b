"""The one permission table: which role may do what.

Every view declares the permission it needs with one of the decorators in
accounts.decorators; a test walks the URL conf and fails on a view without one.
"""

from __future__ import annotations

from enum import StrEnum

from accounts.models import Role


class Perm(StrEnum):
    # Pseudo-permissions for views outside an organization.
    PUBLIC = "public"  # anyone, signed in or not (landing, hosted forms, tracking)
    AUTHENTICATED = "authenticated"  # any signed-in user (org switcher, create org)

    VIEW_DASHBOARD = "view_dashboard"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_ORGANIZATION = "manage_organization"


ORG_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.ADMIN: frozenset(
        {
            Perm.VIEW_DASHBOARD,
            Perm.MANAGE_MEMBERS,
            Perm.MANAGE_ORGANIZATION,
        }
    ),
    Role.MARKETER: frozenset({Perm.VIEW_DASHBOARD}),
    Role.SALES_REP: frozenset({Perm.VIEW_DASHBOARD}),
}


def role_has_perm(role: str, permission: str) -> bool:
    return permission in ORG_PERMISSIONS.get(role, frozenset())
