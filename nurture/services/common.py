"""Errors and small helpers shared by the nurture services."""

from __future__ import annotations

from collections.abc import Iterable
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


def from_address(*, sequence=None, nurture_settings: NurtureSettings | None = None) -> str:
    """Sender: the sequence's, else the organization's nurture settings, else the default."""
    from email.utils import formataddr

    # Names saved before they were checked may hold a line break: never into a header.
    for source in (sequence, nurture_settings):
        if source is not None and source.from_email:
            return formataddr((header_text(source.from_name), source.from_email))
    name = header_text(
        (sequence.from_name if sequence else "")
        or (nurture_settings.from_name if nurture_settings else "")
    )
    if name:
        from email.utils import parseaddr

        return formataddr((name, parseaddr(settings.DEFAULT_FROM_EMAIL)[1]))
    return settings.DEFAULT_FROM_EMAIL
