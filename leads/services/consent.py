"""Consent and suppression: the consent ledger, double opt-in, and the hashes
an erasure leaves so a person is never re-imported or emailed again.

The rules:

- the ledger (ConsentRecord) is append-only: consent given or withdrawn is a new
  row holding the text the person saw, the time, a digest of their IP and where
  it came from (form, import, API, unsubscribe);
- a form asking for double opt-in never sets `email_opt_in` at capture: the
  person gets one confirmation email (exactly once, sent after commit) with a
  signed link, and consent is recorded only when they confirm;
- an erased person's address lives on only as a salted SHA-256 digest
  (ErasedPerson); every ingest path refuses rows whose email matches one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.audit import audit_record
from accounts.models import Organization
from leadflow.core.errors import LeadflowError
from leadflow.core.mail import ERROR_MAX_LENGTH, header_text
from leadflow.core.orgfacts import org_fact
from leadflow.core.tenancy import enqueue_on_commit, tenant_scope
from leads.models import (
    CaptureForm,
    ConsentAction,
    ConsentConfirmation,
    ConsentRecord,
    ConsentSource,
    ErasedPerson,
    FormSubmission,
    Lead,
)

SUPPRESSION_SALT = "leads.privacy.erased-person"
CONFIRM_SALT = "leads.consent.confirm"
CONFIRM_MAX_AGE = timedelta(days=30)
SUPPRESSED_REASON = {
    "code": "suppressed",
    "field": "email",
    "severity": "junk",
    "message": "This person's data was erased at their request; they are not taken in again.",
}


class ConsentError(LeadflowError):
    pass


# --- suppression ---------------------------------------------------------------------


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def suppression_hash(*, organization_id: int, email: str) -> str:
    """Salted SHA-256 of the normalized address (salted per organization too)."""
    value = f"{organization_id}:{normalize_email(email)}"
    return salted_hmac(SUPPRESSION_SALT, value, algorithm="sha256").hexdigest()


def record_key(external_id: str) -> str:
    """How an email-less record id is suppressed (hashed like an address)."""
    return f"id:{external_id}"


def suppressed_emails(*, organization_id: int, emails: Iterable[str]) -> set[str]:
    """Which of these addresses belong to erased people (one query)."""
    by_hash = {suppression_hash(organization_id=organization_id, email=e): e for e in emails if e}
    if not by_hash or not org_fact(
        "erasures", organization_id, lambda: ErasedPerson.objects.exists()
    ):
        return set()
    found = ErasedPerson.objects.filter(email_hash__in=list(by_hash)).values_list(
        "email_hash", flat=True
    )
    return {by_hash[h] for h in found}


def is_suppressed(*, organization_id: int, email: str) -> bool:
    return bool(suppressed_emails(organization_id=organization_id, emails=[email]))


def suppression_add(*, organization_id: int, email: str) -> ErasedPerson:
    person, _ = ErasedPerson.objects.get_or_create(
        organization_id=organization_id,
        email_hash=suppression_hash(organization_id=organization_id, email=email),
    )
    return person


# --- the ledger ----------------------------------------------------------------------


def consent_source_of(origin: str) -> str:
    """The ledger's source for an ingest's consent origin ("form: Contact us",
    "import: list.csv", "api: CRM key")."""
    head = (origin or "").split(":", 1)[0].strip().lower()
    return (
        head
        if head in (ConsentSource.FORM, ConsentSource.IMPORT, ConsentSource.API)
        else (ConsentSource.OTHER)
    )


@dataclass(frozen=True)
class ConsentEntry:
    lead_id: int | None
    email: str
    text: str = ""
    occurred_at: datetime | None = None


def consent_record_batch(
    *,
    organization_id: int,
    entries: Iterable[ConsentEntry],
    action: str,
    source: str,
    ip_hash: str = "",
    detail: str = "",
) -> int:
    """Append ledger rows (one INSERT)."""
    now = timezone.now()
    rows = [
        ConsentRecord(
            organization_id=organization_id,
            lead_id=e.lead_id,
            email=normalize_email(e.email),
            action=action,
            text=e.text,
            occurred_at=e.occurred_at or now,
            ip_hash=ip_hash,
            source=source,
            detail=detail[:200],
        )
        for e in entries
        if e.email
    ]
    ConsentRecord.objects.bulk_create(rows)
    return len(rows)


def consent_withdraw(
    *, organization_id: int, lead_id: int | None, email: str, source: str, detail: str = ""
) -> None:
    """Record a withdrawal (an unsubscribe) and switch the lead's opt-in off."""
    lead = Lead.objects.filter(pk=lead_id).first() if lead_id else None
    if lead is not None:
        Lead.objects.filter(pk=lead.pk).update(email_opt_in=False)
    consent_record_batch(
        organization_id=organization_id,
        entries=[ConsentEntry(lead_id=lead_id, email=email)],
        action=ConsentAction.WITHDRAWN,
        source=source,
        detail=detail,
    )
    audit_record(
        organization=Organization(pk=organization_id),
        action="consent.withdrawn",
        subject=lead,
        label=normalize_email(email),
        data={"source": source},
    )


def consent_ledger(*, email: str = ""):
    qs = ConsentRecord.objects.select_related("lead")
    return qs.filter(email=normalize_email(email)) if email else qs


# --- double opt-in -------------------------------------------------------------------


def consent_request(
    *, form: CaptureForm, submission: FormSubmission, lead_id: int, email: str
) -> ConsentConfirmation | None:
    """A confirmation for a submission that ticked consent on a double opt-in form:
    one per submission (a reprocessed submission finds it), emailed after commit."""
    if not email:
        return None
    confirmation, created = ConsentConfirmation.objects.get_or_create(
        submission=submission,
        defaults={
            "organization_id": submission.organization_id,
            "lead_id": lead_id,
            "email": normalize_email(email),
            "form": form,
            "consent_text": form.consent_text,
        },
    )
    if created:
        enqueue_on_commit(
            "leads.send_consent_confirmation",
            organization_id=submission.organization_id,
            confirmation_id=confirmation.pk,
        )
    return confirmation


def confirmation_token(confirmation: ConsentConfirmation) -> str:
    return signing.dumps(
        {"o": confirmation.organization_id, "c": confirmation.pk}, salt=CONFIRM_SALT
    )


def confirmation_url(confirmation: ConsentConfirmation) -> str:
    path = reverse("leads:consent_confirm", kwargs={"token": confirmation_token(confirmation)})
    return settings.SITE_URL.rstrip("/") + path


@transaction.atomic
def consent_confirmation_send(*, confirmation_id: int) -> bool:
    """Send the confirmation email once: the row is locked and `sent_at` set in the
    same transaction, so a redelivered task skips. A failure raises (the task
    retries or records it)."""
    confirmation = (
        ConsentConfirmation.objects.select_for_update(of=("self",))
        .select_related("organization", "form")
        .filter(pk=confirmation_id)
        .first()
    )
    if confirmation is None or confirmation.sent_at or confirmation.confirmed_at:
        return False
    context = {
        "organization": confirmation.organization,
        "confirmation": confirmation,
        "url": confirmation_url(confirmation),
        "days": CONFIRM_MAX_AGE.days,
    }
    message = EmailMultiAlternatives(
        subject=header_text(
            f"Please confirm your subscription to {confirmation.organization.name}"
        ),
        body=render_to_string("leads/email/consent_confirm.txt", context),
        to=[confirmation.email],
    )
    message.attach_alternative(
        render_to_string("leads/email/consent_confirm.html", context), "text/html"
    )
    message.send()
    confirmation.sent_at = timezone.now()
    confirmation.send_error = ""
    confirmation.save(update_fields=["sent_at", "send_error"])
    return True


def consent_confirmation_send_failed(*, confirmation_id: int, error: str) -> None:
    ConsentConfirmation.objects.filter(pk=confirmation_id, sent_at__isnull=True).update(
        send_error=error[:ERROR_MAX_LENGTH]
    )


def confirmation_from_token(token: str) -> ConsentConfirmation:
    """The confirmation a link names, in its organization's scope (the caller opens it)."""
    try:
        data = signing.loads(token, salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)
        organization_id, confirmation_id = int(data["o"]), int(data["c"])
    except signing.SignatureExpired as exc:
        raise ConsentError("This confirmation link has expired. Please sign up again.") from exc
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise ConsentError("This confirmation link is not valid.") from exc
    with tenant_scope(organization_id):
        confirmation = (
            ConsentConfirmation.objects.select_related("organization", "lead")
            .filter(pk=confirmation_id)
            .first()
        )
    if confirmation is None:
        raise ConsentError("This confirmation link is no longer valid.")
    return confirmation


def consent_confirm(*, token: str, ip_hash: str = "") -> ConsentConfirmation:
    """The person clicked: record the consent (ledger, lead opt-in, audit) once."""
    found = confirmation_from_token(token)
    with tenant_scope(found.organization_id), transaction.atomic():
        confirmation = (
            ConsentConfirmation.objects.select_for_update(of=("self",))
            .select_related("organization", "form")
            .get(pk=found.pk)
        )
        if confirmation.confirmed_at is not None:
            return confirmation
        now = timezone.now()
        confirmation.confirmed_at = now
        confirmation.save(update_fields=["confirmed_at"])
        origin = f"form: {confirmation.form.name}" if confirmation.form else "form"
        Lead.objects.filter(pk=confirmation.lead_id, email_opt_in=False).update(
            email_opt_in=True,
            email_opt_in_at=now,
            email_opt_in_origin=f"{origin} (double opt-in)"[:200],
            updated_at=now,
        )
        consent_record_batch(
            organization_id=confirmation.organization_id,
            entries=[
                ConsentEntry(
                    lead_id=confirmation.lead_id,
                    email=confirmation.email,
                    text=confirmation.consent_text,
                    occurred_at=now,
                )
            ],
            action=ConsentAction.GIVEN,
            source=ConsentSource.FORM,
            ip_hash=ip_hash,
            detail=f"{origin}, confirmed by email"[:200],
        )
        audit_record(
            organization=confirmation.organization,
            action="consent.given",
            subject=confirmation.lead,
            label=confirmation.email,
            data={"source": ConsentSource.FORM, "double_opt_in": True},
        )
    return confirmation
