"""The top bar's organization switcher: the organizations a user may switch to,
kept per user in the shared cache (Redis in production), so that a page costs
no query for it.

A user's entries are kept and forgotten by `leadflow.core.orgfacts` (`kept`,
`forget_keys`: now and again once the transaction commits) when one of their
memberships is saved or deleted (joined, role changed, deactivated, removed; a deleted user or
organization deletes its memberships one by one), and for every member of an
organization whose name or slug may have changed. The one race left (a reader
that loaded the entries before that commit and stores them after the forget) is
bounded by the short lifetime. Signing in loads them, so the pages after it
read the cache. A cache that is down costs the query, never the page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_delete, post_save

from accounts.models import Membership, Organization, Role, User
from accounts.selectors import user_memberships
from leadflow.core.orgfacts import forget_keys, kept

TTL_SECONDS = 300
ROLE_LABELS = {value: str(label) for value, label in Role.choices}


@dataclass(frozen=True)
class SwitcherEntry:
    """One organization of the switcher: where it links and what it shows."""

    organization_id: int
    slug: str
    name: str
    role: str

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)


def _key(user_id: int) -> str:
    return f"switcher:v1:{user_id}"  # a new version when the entries' shape changes


def _load(user: User) -> list[tuple[int, str, str, str]]:
    rows = user_memberships(user=user).values_list(
        "organization_id", "organization__slug", "organization__name", "role"
    )
    return [tuple(row) for row in rows]


def switcher_entries(*, user: User) -> list[SwitcherEntry]:
    """The user's active seats by organization name (accounts.selectors.user_memberships)."""
    rows = kept(_key(user.pk), lambda: _load(user), TTL_SECONDS)
    return [SwitcherEntry(*row) for row in rows]


def switcher_forget(user_ids) -> None:
    """Forget these users' entries now and once the current transaction commits."""
    forget_keys([_key(user_id) for user_id in set(user_ids)])


def _membership_changed(sender, instance: Membership, **kwargs) -> None:
    switcher_forget([instance.user_id])


def _organization_saved(sender, instance: Organization, created: bool, **kwargs) -> None:
    fields = kwargs.get("update_fields")
    if created or (fields is not None and not {"name", "slug"} & set(fields)):
        return  # no member yet, or neither the name nor the slug written
    members = Membership.objects.filter(organization_id=instance.pk).values_list(
        "user_id", flat=True
    )
    switcher_forget(members)


def _signed_in(sender, request, user: User, **kwargs) -> None:
    switcher_entries(user=user)  # loaded now: the pages that follow read the cache


def connect() -> None:
    """Called once by AccountsConfig.ready()."""
    user_logged_in.connect(_signed_in, dispatch_uid="switcher-login")
    post_save.connect(_membership_changed, sender=Membership, dispatch_uid="switcher-m-save")
    post_delete.connect(_membership_changed, sender=Membership, dispatch_uid="switcher-m-del")
    post_save.connect(_organization_saved, sender=Organization, dispatch_uid="switcher-o-save")
