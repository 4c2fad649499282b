"""Errors and small helpers shared by the nurture services."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from email.utils import formataddr, parseaddr
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.models import Membership
from leadflow.core.errors import LeadflowError
from leadflow.core.mail import header_text
from leads.models import Lead
from nurture.models import NurtureSettings, Suppression


class NurtureError(LeadflowError):
    """Base of the nurture domain errors."""


class ListInvalid(NurtureError):
    pass


class SequenceInvalid(NurtureError):
    pass


class EnrollmentError(NurtureError):
    pass


class TrackingError(NurtureError):
    """A tracking/unsubscribe request names nothing that exists (or not this link)."""


def owner_org_id(obj: Any, actor: Membership | None, organization_id: int | None) -> int:
    """The organization a saved object belongs to: its own, the given one, the actor's."""
    found = getattr(obj, "organization_id", None) or organization_id
    found = found or getattr(actor, "organization_id", None)
    if not found:
        raise ValueError("Saving needs an organization (pass organization_id or a membership).")
    return found


def org_settings(organization_id: int) -> NurtureSettings:
    found = NurtureSettings.objects.filter(organization_id=organization_id).first()
    return found or NurtureSettings(organization_id=organization_id)


def sendable_leads(qs: QuerySet[Lead] | None = None) -> QuerySet[Lead]:
    """Leads that may receive marketing email: an email address, opt-in consent,
    not do-not-email, not suppressed, not discarded or merged away."""
    qs = Lead.objects.all() if qs is None else qs
    suppressed = Suppression.objects.filter(email=OuterRef("email"))
    return qs.filter(
        ~Q(email=""),
        email_opt_in=True,
        do_not_email=False,
        discarded_at__isnull=True,
        merged_into__isnull=True,
    ).exclude(Exists(suppressed))


def suppressed_emails(emails: Iterable[str]) -> set[str]:
    wanted = {e for e in emails if e}
    if not wanted:
        return set()
    return set(Suppression.objects.filter(email__in=wanted).values_list("email", flat=True))


# A held message's error starts with this (the outbox shows it; release finds it).
HOLD_PREFIX = "On hold:"
HOLD_RETRY = timedelta(minutes=10)  # a held message is looked at again this often


def is_verified(cfg: NurtureSettings) -> bool:
    return bool(cfg.from_email and cfg.from_email_verified_at)


def sender_problems(cfg: NurtureSettings, *, marketing: bool = True) -> list[str]:
    """Why this organization may not email leads yet (empty: it may). Rep
    one-to-one emails need the verified sender; marketing email the postal
    address too (CAN-SPAM)."""
    problems = []
    if not cfg.from_email:
        problems.append("No from-address is set (Nurture → Sender identity).")
    elif not cfg.from_email_verified_at:
        problems.append(
            f"The from-address {cfg.from_email} is not verified: click the link emailed to "
            "it, or send a new one from Sender identity."
        )
    if marketing and not (cfg.physical_address or "").strip():
        problems.append(
            "No postal address: every marketing email must show one (CAN-SPAM); "
            "add it under Sender identity."
        )
    return problems


def hold_reason(problems: list[str]) -> str:
    return f"{HOLD_PREFIX} {' '.join(problems)} It goes out once this is fixed."


def from_address(*, sequence=None, nurture_settings: NurtureSettings | None = None) -> str:
    """The From header: the organization's verified address, with the
    sequence's from-name or the organization's; until the address is verified,
    the platform's default address (nothing is sent to leads then: the
    dispatcher and the send side hold marketing email)."""
    cfg = nurture_settings or NurtureSettings()
    # Names saved before they were checked may hold a line break: never into a header.
    name = header_text((sequence.from_name if sequence is not None else "") or cfg.from_name)
    if is_verified(cfg):
        return formataddr((name, cfg.from_email))
    if name:
        return formataddr((name, parseaddr(settings.DEFAULT_FROM_EMAIL)[1]))
    return settings.DEFAULT_FROM_EMAIL
