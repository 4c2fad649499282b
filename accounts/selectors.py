"""Reads on memberships and invitations."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Invitation, Membership, Organization, User


def user_memberships(*, user: User) -> QuerySet[Membership]:
    """The organizations a user may switch to (active seats only)."""
    return (
        Membership.objects.filter(user=user, is_active=True)
        .select_related("organization")
        .order_by("organization__name")
    )


def organization_members(*, organization: Organization) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("-is_active", "user__email")
    )


def active_members(*, organization: Organization) -> QuerySet[Membership]:
    """The organization's active people, for owner pickers and filters. Membership is
    not a tenant model: every picker of people must start here (or filter by
    organization itself), never from Membership.objects.all()."""
    return (
        Membership.objects.filter(organization=organization, is_active=True)
        .select_related("user")
        .order_by("user__email")
    )


def open_invitations() -> QuerySet[Invitation]:
    """Open invitations of the active organization (scoped)."""
    return (
        Invitation.objects.filter(accepted_at__isnull=True, revoked_at__isnull=True)
        .select_related("invited_by")
        .order_by("-created_at")
    )
