"""Privacy writes: the right to erasure, the right of access (an export that is
audited), retention purges and the settings behind them. Every one of them
writes an entry to the organization's audit log (accounts.audit)."""

from __future__ import annotations

import csv
import io
import json
import secrets
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Membership, Organization
from leadflow.core.csvsafe import neutralize
from leadflow.core.errors import LeadflowError
from leads.models import ConsentRecord, FormSubmission, Lead, Quality
from leads.services.consent import (
    normalize_email,
    record_key,
    suppression_add,
    suppression_hash,
)
from leads.services.leads import leads_deleted
from privacy.models import PrivacySettings
from privacy.selectors import (
    DELETE,
    KINDS,
    SCRUB,
    Person,
    kind_rows,
    person_counts,
    person_data,
    person_find,
)

PURGE_BATCH = 1000

# A lead that survives erasure as an anonymous fact for the reports: every field
# that could name or reach the person is emptied; its creation day, sources,
# campaigns, stage, score and owner stay (reports count them).
_LEAD_SCRUB: dict[str, Any] = {
    "email": "",
    "first_name": "",
    "last_name": "",
    "title": "",
    "phone": "",
    "company": None,
    "company_name": "",
    "industry": "",
    "company_size": None,
    "country": "",
    "city": "",
    "custom": {},
    "quality_reasons": [],
    "corrections": {},
    "score_breakdown": {},
    "email_opt_in": False,
    "email_opt_in_at": None,
    "email_opt_in_origin": "",
    "do_not_email": True,
    "do_not_call": True,
    "gating_reason": "",
}


class PrivacyError(LeadflowError):
    pass


class PersonUnknown(PrivacyError):
    """No data is held about the person a request names."""


def _who(email: str, person: Person | None = None) -> str:
    """How the audit log names a person without keeping their address: a digest prefix."""
    return (
        f"person {suppression_hash(organization_id=0, email=email)[:12]}"
        if email
        else (f"person of lead #{person.lead_ids[0]}" if person and person.lead_ids else "person")
    )


def _unknown(organization: Organization, actor: Membership | None, action: str, email: str):
    audit_record(
        organization=organization,
        actor=actor,
        action=action,
        label=_who(email),
        data={"found": False},
    )
    return PersonUnknown(
        "We hold no data about this email address in this organization: nothing to "
        + ("erase." if action.endswith("erasure_unknown") else "export.")
    )


@dataclass
class ErasureResult:
    counts: dict[str, int]
    suppressed: int


def person_erase(
    *,
    organization: Organization,
    actor: Membership | None,
    email: str = "",
    lead: Lead | None = None,
) -> ErasureResult:
    """Erase a person: their merged-away leads, submissions, emails, list and
    sequence memberships, consent details and notes are deleted; the lead they
    live on as, its touches, stage history and deal stay as anonymous facts, so
    reports (live and rollups, which recount from these rows) keep their counts.
    Their addresses are kept only as suppression hashes: no ingest path takes
    them in again and no email goes to them. One transaction; audited, an unknown
    person too (PersonUnknown)."""
    email = normalize_email(email)
    if not person_find(email=email, lead=lead).found:
        raise _unknown(organization, actor, "lead.erasure_unknown", email)
    with transaction.atomic():
        person = person_find(email=email, lead=lead)
        counts = person_counts(person)
        leads = list(Lead.objects.select_for_update().filter(pk__in=person.lead_ids))
        for kind in KINDS:
            rows = kind_rows(person, kind)
            if kind.erase == DELETE:
                # erase(): ConsentRecord's append-only queryset, behind its scoped manager
                rows.erase() if kind.model is ConsentRecord else rows.delete()  # type: ignore[attr-defined]
            elif kind.erase == SCRUB:
                rows.update(**kind.scrub)
        merged_away = [x.pk for x in leads if x.merged_into_id is not None]
        survivors = [x for x in leads if x.merged_into_id is None]
        # The CRM hears lead.deleted for each of them (read before anything goes).
        leads_deleted(organization_id=organization.pk, leads=list(leads))
        Lead.objects.filter(pk__in=merged_away).delete()
        now = timezone.now()
        for survivor in survivors:
            Lead.objects.filter(pk=survivor.pk).update(
                **_LEAD_SCRUB,
                external_id=f"erased:{secrets.token_hex(8)}",
                discarded_at=survivor.discarded_at or now,
                reviewed_at=survivor.reviewed_at or now,
                updated_at=now,  # the rollups recount this lead's day
            )
        for key in person.emails | {record_key(x) for x in person.record_ids}:
            suppression_add(organization_id=organization.pk, email=key)
        audit_record(
            organization=organization,
            actor=actor,
            action="lead.erased",
            label=_who(email, person),
            data={"counts": counts, "suppressed": len(person.emails) + len(person.record_ids)},
        )
    return ErasureResult(counts=counts, suppressed=len(person.emails) + len(person.record_ids))


def person_export(
    *,
    organization: Organization,
    actor: Membership | None,
    email: str = "",
    lead: Lead | None = None,
    fmt: str = "json",
) -> tuple[str, bytes]:
    """Right of access: everything held about the person as JSON, or as a zip of
    one CSV per kind. Audited (an unknown person too). Returns (filename, bytes)."""
    email = normalize_email(email)
    person = person_find(email=email, lead=lead)
    if not person.found:
        raise _unknown(organization, actor, "privacy.access_unknown", email)
    data = person_data(person)
    audit_record(
        organization=organization,
        actor=actor,
        action="privacy.access_exported",
        label=_who(email, person),
        data={"format": fmt, "counts": {k: len(v) for k, v in data.items()}},
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if fmt == "csv":
        return f"personal-data-{stamp}.zip", _zip_of_csvs(data)
    payload = {"exported_at": timezone.now(), "emails": sorted(person.emails), **data}
    body = json.dumps(payload, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
    return f"personal-data-{stamp}.json", body.encode()


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        value = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)
    elif isinstance(value, datetime):
        value = value.isoformat()
    return neutralize(value)


def rows_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    header: list[str] = []
    for row in rows:
        header += [k for k in row if k not in header]
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(row.get(k)) for k in header])
    return out.getvalue()


def _zip_of_csvs(data: Mapping[str, Sequence[Mapping[str, Any]]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, rows in data.items():
            archive.writestr(f"{name}.csv", rows_csv(rows))
    return buffer.getvalue()


def consent_ledger_export(*, organization: Organization, actor: Membership | None) -> str:
    """The whole consent ledger as CSV (audited)."""
    fields = ["occurred_at", "action", "email", "source", "detail", "text", "ip_hash", "lead_id"]
    rows = list(ConsentRecord.objects.order_by("occurred_at", "pk").values(*fields))
    audit_record(
        organization=organization,
        actor=actor,
        action="consent.exported",
        label="consent ledger",
        data={"rows": len(rows)},
    )
    return rows_csv(rows) if rows else ",".join(fields) + "\r\n"


# --- retention -----------------------------------------------------------------------


def privacy_settings_update(
    *, organization: Organization, actor: Membership | None, retention_days: int | None
) -> PrivacySettings:
    with transaction.atomic():
        settings, _ = PrivacySettings.objects.select_for_update().get_or_create(
            organization=organization
        )
        before = settings.retention_days
        settings.retention_days = retention_days
        settings.save()
        if before != retention_days:
            audit_record(
                organization=organization,
                actor=actor,
                action="privacy.settings_changed",
                label="retention",
                data={"retention_days": retention_days, "before": before},
            )
    return settings


def _delete_in_batches(qs) -> int:
    total = 0
    while True:
        batch = list(qs.order_by("pk").values_list("pk", flat=True)[:PURGE_BATCH])
        if not batch:
            return total
        qs.model.objects.filter(pk__in=batch).delete()
        total += len(batch)


def retention_purge(*, organization_id: int, now: datetime | None = None) -> dict[str, int]:
    """Purge processed raw submissions and junk leads (with the leads merged into
    them) older than the organization's retention. Set-based, in batches;
    idempotent (a second run finds nothing). Audited with its counts."""
    settings = PrivacySettings.objects.filter(organization_id=organization_id).first()
    if settings is None or not settings.retention_days:
        return {}
    cutoff = (now or timezone.now()) - timedelta(days=settings.retention_days)
    submissions = _delete_in_batches(
        FormSubmission.objects.filter(received_at__lt=cutoff, processed_at__isnull=False)
    )
    junk = Lead.objects.filter(
        quality=Quality.JUNK, created_at__lt=cutoff, merged_into__isnull=True
    )
    merged = _delete_in_batches(Lead.objects.filter(merged_into__in=junk.values("pk")))
    leads = _delete_in_batches(junk)
    counts = {"submissions": submissions, "junk_leads": leads, "merged_into_junk": merged}
    if submissions or leads or merged:
        audit_record(
            organization=Organization(pk=organization_id),
            action="privacy.retention_purged",
            label=f"older than {settings.retention_days} days",
            data={"counts": counts, "retention_days": settings.retention_days},
        )
    return counts
