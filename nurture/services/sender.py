"""The organization's sender identity: from-name and from-address (verified by
a signed link emailed to it), reply-to, postal address and the DKIM key.

Rules enforced here and by the send side (nurture.services.sends):
- an address is "unverified" until the link sent to it is clicked; changing the
  address clears the verification and sends a new link;
- no email to a lead goes out without a verified sender, and no marketing
  email without a postal address (CAN-SPAM): such messages are held, queued
  with the reason, never dropped, and released the moment the sender is ready;
- every message from the verified address is DKIM-signed with the
  organization's key (generated here when first needed).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Membership, Organization
from leadflow.core.mail import ERROR_MAX_LENGTH, header_text
from leadflow.core.tenancy import enqueue_on_commit, tenant_scope
from nurture import dkim
from nurture.models import NurtureSettings
from nurture.services.common import NurtureError, is_verified, sender_problems
from nurture.services.sends import held_release

VERIFY_SALT = "nurture.sender.verify"
RESEND_AFTER = timedelta(minutes=1)


class SenderError(NurtureError):
    """A sender setting or confirmation link that cannot be used."""


def _settings_for_update(organization_id: int) -> NurtureSettings:
    cfg, _ = NurtureSettings.objects.select_for_update().get_or_create(
        organization_id=organization_id
    )
    return cfg


# --- writes --------------------------------------------------------------------------


def sender_save(
    *,
    data: Mapping[str, Any],
    actor: Membership | None = None,
    organization_id: int,
) -> NurtureSettings:
    """Save the sender identity. A new from-address is unverified and gets a
    confirmation link; held messages go out once everything needed is there."""
    from_email = (data.get("from_email") or "").strip()
    with transaction.atomic():
        cfg = _settings_for_update(organization_id)
        changed = from_email.lower() != (cfg.from_email or "").lower()
        cfg.from_name = header_text(data.get("from_name") or "", 120)
        cfg.from_email = from_email
        cfg.reply_to = (data.get("reply_to") or "").strip()
        cfg.physical_address = (data.get("physical_address") or "").strip()
        if changed:
            cfg.from_email_verified_at = None
            cfg.verification_sent_at = None
            cfg.verification_error = ""
        cfg.save()
        audit_record(
            organization=Organization.objects.get(pk=organization_id),
            action="sender.updated",
            actor=actor,
            subject=cfg,
            label=cfg.from_email or "sender identity",
            data={"from_email": cfg.from_email, "address_changed": changed},
        )
        if changed and from_email:
            _enqueue_verification(organization_id)
        if not sender_problems(cfg):
            held_release(organization_id=organization_id)
    dkim_key_ensure(organization_id=organization_id)
    return cfg


def _enqueue_verification(organization_id: int) -> None:
    from nurture.tasks import send_sender_verification

    enqueue_on_commit(send_sender_verification, organization_id=organization_id)


def sender_verification_request(*, organization_id: int) -> NurtureSettings:
    """Send the confirmation link again (at most once a minute)."""
    with transaction.atomic():
        cfg = _settings_for_update(organization_id)
        if not cfg.from_email:
            raise SenderError("Set a from-address first.")
        if is_verified(cfg):
            raise SenderError(f"{cfg.from_email} is already verified.")
        sent = cfg.verification_sent_at
        if sent and timezone.now() - sent < RESEND_AFTER:
            raise SenderError("A link was sent less than a minute ago: check that inbox first.")
        cfg.verification_error = ""
        cfg.save(update_fields=["verification_error"])
        _enqueue_verification(organization_id)
    return cfg


def verification_token(cfg: NurtureSettings) -> str:
    """Signed (not stored): the organization and the address it confirms, so a
    link for a previous address confirms nothing."""
    return signing.dumps({"o": cfg.organization_id, "e": cfg.from_email.lower()}, salt=VERIFY_SALT)


def sender_verification_send(*, organization_id: int) -> bool:
    """Email the confirmation link to the from-address (the verification task)."""
    cfg = NurtureSettings.objects.filter(organization_id=organization_id).first()
    if cfg is None or not cfg.from_email or is_verified(cfg):
        return False
    organization = Organization.objects.get(pk=organization_id)
    url = settings.SITE_URL.rstrip("/") + reverse(
        "nurture_public:sender_verify", kwargs={"token": verification_token(cfg)}
    )
    context = {
        "organization": organization,
        "address": cfg.from_email,
        "url": url,
        "days": settings.SENDER_VERIFY_MAX_AGE_DAYS,
    }
    message = EmailMultiAlternatives(
        subject=header_text(f"Confirm {cfg.from_email} as the sender of {organization.name}"),
        body=render_to_string("nurture/email/sender_verification.txt", context),
        to=[cfg.from_email],
    )
    message.attach_alternative(
        render_to_string("nurture/email/sender_verification.html", context), "text/html"
    )
    message.send()
    NurtureSettings.objects.filter(pk=cfg.pk, from_email=cfg.from_email).update(
        verification_sent_at=timezone.now(), verification_error=""
    )
    return True


def sender_verification_failed(*, organization_id: int, error: str) -> None:
    NurtureSettings.objects.filter(organization_id=organization_id).update(
        verification_error=error[:ERROR_MAX_LENGTH]
    )


def _verification_payload(token: str) -> dict:
    max_age = timedelta(days=settings.SENDER_VERIFY_MAX_AGE_DAYS)
    try:
        return signing.loads(token, salt=VERIFY_SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise SenderError(
            "This confirmation link has expired: send a new one from Sender identity."
        ) from exc
    except signing.BadSignature as exc:
        raise SenderError("This confirmation link is not valid.") from exc


def _current(cfg: NurtureSettings | None, payload: dict) -> NurtureSettings:
    if cfg is None or cfg.from_email.lower() != payload["e"]:
        raise SenderError(
            "This link confirms an address that is no longer the sender: "
            "use the link sent to the current one."
        )
    return cfg


def sender_verification_target(*, token: str) -> NurtureSettings:
    """The settings a confirmation link would verify (nothing changes). Raises SenderError."""
    payload = _verification_payload(token)
    with tenant_scope(payload["o"]):
        return _current(
            NurtureSettings.objects.filter(organization_id=payload["o"]).first(), payload
        )


def sender_verify(*, token: str) -> NurtureSettings:
    """The confirmation link was confirmed: the address it names is verified if
    it is still the organization's from-address. Raises SenderError otherwise."""
    payload = _verification_payload(token)
    with tenant_scope(payload["o"]), transaction.atomic():
        locked = NurtureSettings.objects.select_for_update()
        cfg = _current(locked.filter(organization_id=payload["o"]).first(), payload)
        if not cfg.from_email_verified_at:
            cfg.from_email_verified_at = timezone.now()
            cfg.save(update_fields=["from_email_verified_at"])
            audit_record(
                organization=Organization.objects.get(pk=cfg.organization_id),
                action="sender.verified",
                subject=cfg,
                label=cfg.from_email,
            )
        if not sender_problems(cfg):
            held_release(organization_id=cfg.organization_id)
        dkim_key_ensure(organization_id=cfg.organization_id)
    return cfg


def dkim_key_ensure(*, organization_id: int, bits: int = dkim.KEY_BITS) -> NurtureSettings:
    """The organization's DKIM key, generated on first need (idempotent)."""
    cfg = NurtureSettings.objects.filter(organization_id=organization_id).first()
    if cfg is not None and cfg.dkim_private_key:
        return cfg
    pair = dkim.generate_key(selector=f"lf{secrets.token_hex(3)}", bits=bits)
    with transaction.atomic():
        cfg = _settings_for_update(organization_id)
        if not cfg.dkim_private_key:  # a concurrent call may have won
            cfg.dkim_selector, cfg.dkim_public_key = pair.selector, pair.public_key
            cfg.dkim_private_key = pair.private_key
            cfg.save(update_fields=["dkim_selector", "dkim_public_key", "dkim_private_key"])
    return cfg
