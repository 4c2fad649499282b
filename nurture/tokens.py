"""Signed tokens of the public email endpoints (unsubscribe, open pixel, click).

Each purpose has its own salt, so a pixel token can never unsubscribe anyone.
A token carries the organization id and the message's Message-ID (plus the
link index for clicks); the endpoints resolve the tenant from it and then look
the message up *inside* that tenant, so a token of one organization can never
touch another's rows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.urls import reverse

UNSUBSCRIBE = "nurture.unsubscribe"
OPEN = "nurture.open"
CLICK = "nurture.click"

# Unsubscribe links must keep working for as long as people keep old mail.
MAX_AGE = {UNSUBSCRIBE: 60 * 60 * 24 * 365 * 2, OPEN: 60 * 60 * 24 * 365, CLICK: 60 * 60 * 24 * 365}


class BadToken(Exception):
    """Tampered, expired or malformed token."""


@dataclass(frozen=True)
class TokenData:
    organization_id: int
    message_id: str
    link: int | None = None


def _signer(purpose: str) -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=purpose)


@lru_cache(maxsize=16)
def _mac(purpose: str, secret: str):
    # Django's Signer derives the HMAC key from salt + SECRET_KEY on every call;
    # a message mints four or more tokens, so derive it once and copy the state.
    key = hashlib.sha256(f"{purpose}signer{secret}".encode()).digest()
    return hmac.new(key, digestmod=hashlib.sha256)


def make(purpose: str, *, organization_id: int, message_id: str, link: int | None = None) -> str:
    """The same token as ``TimestampSigner(salt=purpose).sign_object(payload)``
    (read() verifies it with Django's signer), minted without re-deriving the key."""
    payload = [organization_id, message_id] + ([link] if link is not None else [])
    data = signing.b64_encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    value = f"{data}:{signing.b62_encode(int(time.time()))}"
    mac = _mac(purpose, settings.SECRET_KEY).copy()
    mac.update(value.encode())
    return f"{value}:{signing.b64_encode(mac.digest()).decode()}"


def read(purpose: str, token: str) -> TokenData:
    try:
        payload = _signer(purpose).unsign_object(token, max_age=MAX_AGE[purpose])
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise BadToken(str(exc)) from exc
    if (
        not isinstance(payload, list)
        or len(payload) not in (2, 3)
        or not isinstance(payload[0], int)
        or not isinstance(payload[1], str)
        or (len(payload) == 3 and not isinstance(payload[2], int))
        or (purpose == CLICK) != (len(payload) == 3)
    ):
        raise BadToken("unexpected payload")
    return TokenData(*payload)


@lru_cache(maxsize=32)
def _url_parts(name: str, site_url: str) -> tuple[str, str]:
    # reverse() once per endpoint: a message needs three or more of these URLs.
    path = reverse(f"nurture_public:{name}", kwargs={"token": "TOKEN"})
    before, _, after = path.partition("TOKEN")
    return site_url.rstrip("/") + before, after


def _url(name: str, token: str) -> str:
    before, after = _url_parts(name, settings.SITE_URL)
    return f"{before}{token}{after}"


def unsubscribe_url(*, organization_id: int, message_id: str) -> str:
    token = make(UNSUBSCRIBE, organization_id=organization_id, message_id=message_id)
    return _url("unsubscribe", token)


def open_url(*, organization_id: int, message_id: str) -> str:
    return _url("open", make(OPEN, organization_id=organization_id, message_id=message_id))


def click_url(*, organization_id: int, message_id: str, link: int) -> str:
    token = make(CLICK, organization_id=organization_id, message_id=message_id, link=link)
    return _url("click", token)
