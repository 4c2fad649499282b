"""The organization's audit log: one write and one read, used by every app that
changes personal data or merges, erases or exports records."""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet

from accounts.models import AuditEvent, Membership, Organization


def audit_record(
    *,
    organization: Organization,
    action: str,
    actor: Membership | None = None,
    subject: Model | None = None,
    label: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one entry. ``label`` defaults to ``str(subject)``, kept as text so the
    entry outlives the record."""
    return AuditEvent.objects.create(
        organization=organization,
        actor=actor,
        action=action,
        subject_type=subject._meta.label if subject is not None else "",
        subject_id=subject.pk if subject is not None else None,
        subject=(label or (str(subject) if subject is not None else ""))[:300],
        data=data or {},
    )


def audit_events(*, organization: Organization) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(organization=organization).select_related("actor__user")
