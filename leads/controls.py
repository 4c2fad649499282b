"""The lead list's controls, its filter form and its bulk bar, kept rendered.

They list the organization's members, campaigns and static lists: four queries,
a form built from deep copies of its fields and a template per option, on every
view of the list — more than the page's rows cost. Their markup depends only on
those lists, on what the member may do and on the query string, so the page keeps
it in the shared cache under a key made of all of them and of a per-organization
version. Saving or deleting a member, a person's name, a campaign or a listed
model (a bulk action's `options_model`) forgets the version (leadflow.core.orgfacts:
now and on commit), and the version itself lives a minute, which bounds what a
write that bypasses the signals (a queryset `update`) can leave stale.

The rows, the counts and the CSRF token are never part of it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

from django.core.cache import cache
from django.db.models.signals import post_delete, post_save

from leadflow.core.orgfacts import org_fact, org_fact_forget

log = logging.getLogger(__name__)
FACT = "lead_list_controls"
# Parameters that move through the list without changing its controls.
PAGING_PARAMS = frozenset({"cursor", "page", "per_page"})


def controls_keys(request, *, can_edit: bool, bulk_keys: list[str]) -> dict[str, str]:
    """The cache keys of the member's controls: `filter_key` (it shows the query's
    values, so it varies with them) and `bulk_key` (it does not)."""
    organization_id = request.organization.pk
    version = org_fact(FACT, organization_id, lambda: secrets.token_hex(8))
    pairs = ((k, v) for k, vs in request.GET.lists() if k not in PAGING_PARAMS for v in vs)
    seed = (request.path, request.membership.role, can_edit, bulk_keys)

    def key(part: str, *vary) -> str:
        digest = hashlib.blake2b(repr((part, seed, vary)).encode(), digest_size=16).hexdigest()
        return f"leadlist:{part}:{organization_id}:{version}:{digest}"

    return {"filter_key": key("filters", sorted(pairs)), "bulk_key": key("bulk")}


def kept_fragments(keys) -> dict[str, str | None]:
    """The kept markup of these keys, read in one round trip (None: render it;
    {% fragment_cache %} reads what the view read). A cache outage reads nothing."""
    keys = list(keys)
    try:
        found = cache.get_many(keys)
    except Exception:
        log.warning("Cache unavailable; the lead list's controls are rendered")
        found = {}
    return {key: found.get(key) for key in keys}


def forget_controls(organization_id: int) -> None:
    """Forget the organization's kept controls and the names its rows show."""
    from leads.selectors import LABELS_FACT

    org_fact_forget(FACT, organization_id)
    org_fact_forget(LABELS_FACT, organization_id)


def _forget_for_instance(sender, instance, **kwargs) -> None:
    forget_controls(instance.organization_id)


def _forget_for_user(sender, instance, update_fields=None, **kwargs) -> None:
    # A sign-in saves last_login only: the names the controls show are unchanged.
    if update_fields is not None and not {"full_name", "email"} & set(update_fields):
        return
    from accounts.models import Membership

    for organization_id in Membership.objects.filter(user=instance).values_list(
        "organization_id", flat=True
    ):
        forget_controls(organization_id)


def watch(model) -> None:
    """Forget the controls of the instance's organization when `model` changes."""
    uid = f"leadlist-controls-{model._meta.label_lower}"
    post_save.connect(_forget_for_instance, sender=model, dispatch_uid=uid)
    post_delete.connect(_forget_for_instance, sender=model, dispatch_uid=uid)


def connect() -> None:
    """The models the controls list, by the leads app (bulk actions add theirs)."""
    from accounts.models import Membership, User
    from leads.models import Campaign

    watch(Membership)
    watch(Campaign)
    post_save.connect(_forget_for_user, sender=User, dispatch_uid="leadlist-controls-user")
