"""Everything held about a person, kind by kind: the one table both the right of
access (export) and the right to erasure read, so neither can miss a kind the
other covers. tests/privacy/test_coverage.py fails when a model that points at a
lead is missing here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet

from accounts.audit import audit_events
from accounts.models import AuditEvent, Organization
from leadflow.core.tenancy import TenantModel
from leads.models import (
    Activity,
    ConsentConfirmation,
    ConsentRecord,
    DuplicateCandidate,
    DuplicateKey,
    FormSubmission,
    Lead,
    LeadMerge,
)
from leads.services.consent import normalize_email
from nurture.models import (
    DirectEmail,
    EmailMessage,
    Enrollment,
    InboundMail,
    ListMembership,
    Suppression,
    Unsubscribe,
)
from pipeline.models import (
    Assignment,
    FollowUp,
    Notification,
    Opportunity,
    Qualification,
    StageTransition,
    WebhookDelivery,
)
from privacy.models import PrivacySettings
from scoring.models import ScoreHistory, TrainingLead

# What erasure does to each kind:
# - "delete": the rows go;
# - "scrub": the rows stay as anonymous facts the reports count (lead cohorts,
#   stage history, revenue, touches), with these fields emptied;
# - "keep": the rows hold no personal data (numbers and ids only).
DELETE, SCRUB, KEEP = "delete", "scrub", "keep"


@dataclass(frozen=True)
class Kind:
    name: str
    model: type[TenantModel]  # each kind is tenant data: the scoped manager `objects`
    lead_fields: tuple[str, ...] = ("lead",)
    email_field: str = ""
    erase: str = DELETE
    scrub: dict[str, Any] = field(default_factory=dict)
    related: tuple[str, ...] = ()


# Leads themselves are handled by person_erase (survivors scrubbed, merged-away deleted).
KINDS: list[Kind] = [
    Kind(
        "activities",
        Activity,
        erase=SCRUB,
        scrub={"properties": {}, "external_id": None},
    ),
    Kind(
        "form_submissions",
        FormSubmission,
        email_field="payload__email",
        related=("form",),
    ),
    Kind("consent_ledger", ConsentRecord, email_field="email"),
    Kind("consent_confirmations", ConsentConfirmation, email_field="email"),
    Kind("emails", EmailMessage, email_field="to_email"),
    Kind("unsubscribes", Unsubscribe, email_field="email"),
    Kind("email_suppressions", Suppression, lead_fields=(), email_field="email"),
    Kind("list_memberships", ListMembership, related=("list",)),
    Kind("enrollments", Enrollment, related=("sequence",)),
    Kind("stage_history", StageTransition, erase=SCRUB, scrub={"reason": ""}),
    Kind("qualification", Qualification),
    Kind(
        "opportunities",
        Opportunity,
        erase=SCRUB,
        scrub={"name": "Erased person", "next_step": "", "close_reason": ""},
    ),
    Kind("assignments", Assignment, erase=SCRUB, scrub={"reason": ""}),
    Kind("notifications", Notification),
    Kind("webhook_deliveries", WebhookDelivery),
    Kind("merges", LeadMerge, lead_fields=("kept", "dropped")),
    Kind("score_history", ScoreHistory, erase=KEEP),
    Kind("training_leads", TrainingLead, erase=KEEP),
    Kind("one_to_one_emails", DirectEmail, email_field="to_email"),
    Kind("replies", InboundMail, email_field="from_email"),
    Kind("tasks", FollowUp),
    Kind("duplicate_keys", DuplicateKey),
    Kind("duplicate_pairs", DuplicateCandidate, lead_fields=("lead_a", "lead_b")),
]


@dataclass
class Person:
    """A person as the organization holds them: the addresses they used and every
    lead record of theirs, merged-away ones included."""

    emails: set[str]
    lead_ids: list[int]
    record_ids: set[str] = field(default_factory=set)  # CRM ids (external_id)

    @property
    def found(self) -> bool:
        return bool(self.lead_ids) or any(
            kind_rows(self, kind).exists() for kind in KINDS if kind.email_field
        )


def _closure(lead_ids: set[int]) -> set[int]:
    """The leads merged into these and the ones these were merged into, transitively."""
    seen = set(lead_ids)
    frontier = set(lead_ids)
    while frontier:
        linked = Lead.objects.filter(Q(pk__in=frontier) | Q(merged_into_id__in=frontier))
        found = set()
        for pk, into in linked.values_list("pk", "merged_into_id"):
            found.add(pk)
            if into:
                found.add(into)
        frontier = found - seen
        seen |= found
    return seen


def person_find(*, email: str = "", lead: Lead | None = None) -> Person:
    """The person an address or a lead names (inside the organization's scope)."""
    start: set[int] = set()
    emails: set[str] = set()
    email = normalize_email(email)
    if email:
        emails.add(email)
        start |= set(Lead.objects.filter(email=email).values_list("pk", flat=True))
    if lead is not None:
        start.add(lead.pk)
    ids = _closure(start) if start else set()
    identities = Lead.objects.filter(pk__in=ids).values_list("email", "external_id")
    emails |= {e for e, _ in identities if e}
    record_ids = {x for _, x in identities if x}
    return Person(emails=emails, lead_ids=sorted(ids), record_ids=record_ids)


def kind_rows(person: Person, kind: Kind) -> QuerySet:
    match = Q(pk__in=[])
    for name in kind.lead_fields:
        match |= Q(**{f"{name}_id__in": person.lead_ids})
    if kind.email_field and person.emails:
        match |= Q(**{f"{kind.email_field}__in": sorted(person.emails)})
    return kind.model.objects.filter(match).order_by("pk")


def person_counts(person: Person) -> dict[str, int]:
    counts = {"leads": len(person.lead_ids)}
    for kind in KINDS:
        counts[kind.name] = kind_rows(person, kind).count()
    return counts


def person_summary(person: Person) -> list[tuple[str, int, str]]:
    """(kind, rows, what erasure does to them), the leads first."""
    merged_away = Lead.objects.filter(pk__in=person.lead_ids, merged_into__isnull=False).count()
    rows = [("leads", len(person.lead_ids) - merged_away, SCRUB)]
    rows.append(("merged_away_leads", merged_away, DELETE))
    return rows + [(kind.name, kind_rows(person, kind).count(), kind.erase) for kind in KINDS]


def person_data(person: Person) -> dict[str, list[Mapping[str, Any]]]:
    """Every row held about the person, kind by kind, as plain values."""
    data: dict[str, list[Mapping[str, Any]]] = {
        "leads": list(Lead.objects.filter(pk__in=person.lead_ids).order_by("pk").values())
    }
    for kind in KINDS:
        rows = kind_rows(person, kind)
        extra = {f"{name}_name": f"{name}__name" for name in kind.related}
        data[kind.name] = [
            {**row, **{k: row.pop(v) for k, v in extra.items()}}
            for row in rows.values(
                *[f.attname for f in kind.model._meta.concrete_fields], *extra.values()
            )
        ]
    return data


def privacy_settings(*, organization: Organization) -> PrivacySettings:
    return PrivacySettings.objects.filter(organization=organization).first() or PrivacySettings(
        organization=organization
    )


def audit_log(*, organization: Organization, action: str = "") -> QuerySet[AuditEvent]:
    qs = audit_events(organization=organization).order_by("-occurred_at", "-pk")
    if action:
        qs = (
            qs.filter(action__startswith=action)
            if action.endswith(".")
            else qs.filter(action=action)
        )
    return qs


def audit_actions(*, organization: Organization) -> list[str]:
    return list(
        AuditEvent.objects.filter(organization=organization)
        .order_by("action")
        .values_list("action", flat=True)
        .distinct()
    )
