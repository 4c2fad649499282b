"""API keys: create (the full key is returned once), revoke, authenticate.

A key reads ``lf_<prefix>_<secret>``. The prefix is public (it is shown in the
list and finds the row); only a SHA-256 of the secret is stored, so a database
leak exposes no usable key. ApiKey is not a TenantModel (it names the tenant of
an API request), so every query here filters by organization or by prefix.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import ApiKey, Organization, User
from leadflow.core.errors import LeadflowError

KEY_SCHEME = "lf"
PREFIX_BYTES = 6  # 12 hex characters; hex so it never contains the "_" separator
SECRET_BYTES = 32
MAX_ACTIVE_KEYS = 50
# last_used_at is informational: one write per key per minute, not per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
NAME_MAX_LENGTH = ApiKey._meta.get_field("name").max_length


class ApiKeyError(LeadflowError):
    pass


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def format_key(prefix: str, secret: str) -> str:
    return f"{KEY_SCHEME}_{prefix}_{secret}"


def parse_key(raw: str | None) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    if not raw:
        return None
    parts = raw.strip().split("_", 2)  # the secret itself may contain "_"
    if len(parts) != 3 or parts[0] != KEY_SCHEME:
        return None
    _, prefix, secret = parts
    max_prefix = ApiKey._meta.get_field("prefix").max_length
    if not prefix or len(prefix) > max_prefix or not secret or len(secret) > 200:
        return None
    return prefix, secret


def organization_api_keys(*, organization: Organization) -> QuerySet[ApiKey]:
    """Every key of an organization, active ones first, newest first."""
    return (
        ApiKey.objects.filter(organization=organization)
        .select_related("created_by")
        .order_by(F("revoked_at").desc(nulls_first=True), "-created_at", "-pk")
    )


def apikey_get(*, organization: Organization, apikey_id: int) -> ApiKey:
    """One key of this organization; another organization's key is a 404 like a missing one."""
    try:
        return ApiKey.objects.get(pk=apikey_id, organization=organization)
    except ApiKey.DoesNotExist as exc:
        raise Http404("No such API key") from exc


@transaction.atomic
def apikey_create(
    *, organization: Organization, name: str, created_by: User | None
) -> tuple[ApiKey, str]:
    """A new key; returns the row and the full key, which is never retrievable again."""
    name = (name or "").strip()
    if not name:
        raise ApiKeyError("Give the key a name, e.g. the system that will use it.")
    if len(name) > NAME_MAX_LENGTH:
        raise ApiKeyError(f"Key names have at most {NAME_MAX_LENGTH} characters.")
    # Lock the organization row so two concurrent creations can't both pass the cap.
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    active = ApiKey.objects.filter(organization=organization, revoked_at__isnull=True).count()
    if active >= MAX_ACTIVE_KEYS:
        raise ApiKeyError(
            f"An organization can have at most {MAX_ACTIVE_KEYS} active keys; revoke unused ones."
        )
    secret = secrets.token_urlsafe(SECRET_BYTES)
    while True:
        prefix = secrets.token_hex(PREFIX_BYTES)
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    key = ApiKey.objects.create(
        organization=organization,
        name=name,
        prefix=prefix,
        key_hash=hash_secret(secret),
        created_by=created_by,
    )
    return key, format_key(prefix, secret)


def apikey_revoke(*, apikey: ApiKey) -> bool:
    """Revoke now (the next request with the key is refused). False if it already was."""
    now = timezone.now()
    updated = ApiKey.objects.filter(pk=apikey.pk, revoked_at__isnull=True).update(revoked_at=now)
    if updated:
        apikey.revoked_at = now
    return bool(updated)


def apikey_authenticate(raw: str | None) -> ApiKey | None:
    """The active key a presented string names, or None (malformed, unknown, wrong, revoked)."""
    parsed = parse_key(raw)
    if parsed is None:
        return None
    prefix, secret = parsed
    key = ApiKey.objects.filter(prefix=prefix).first()
    # Compare even when the prefix is unknown so both paths cost about the same.
    expected = key.key_hash if key is not None else hash_secret(prefix)
    matches = hmac.compare_digest(hash_secret(secret), expected)
    if key is None or not matches or key.revoked_at is not None:
        return None
    _touch_last_used(key)
    return key


def _touch_last_used(key: ApiKey) -> None:
    now = timezone.now()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        return
    # Conditional UPDATE: concurrent requests of the same key write at most once.
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ApiKey.objects.filter(stale, pk=key.pk).update(last_used_at=now)
    key.last_used_at = now
