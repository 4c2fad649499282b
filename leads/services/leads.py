"""Writes on existing leads: edit, review (approve / discard), bulk actions, merge."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Field, QuerySet
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Membership
from leadflow.core import hooks
from leadflow.core.errors import LeadflowError
from leads.models import (
    Activity,
    ActivityKind,
    Campaign,
    CandidateStatus,
    DuplicateCandidate,
    FormSubmission,
    Lead,
    LeadMerge,
    Quality,
)
from leads.scrub import scrub_lead
from leads.services import duplicates


class LeadError(LeadflowError):
    pass


# Fields a person may edit on the lead form, and choose between when merging.
EDITABLE_FIELDS = [
    "email",
    "first_name",
    "last_name",
    "title",
    "phone",
    "company_name",
    "industry",
    "company_size",
    "country",
    "city",
    "do_not_email",
    "do_not_call",
]
MERGEABLE_FIELDS = [*EDITABLE_FIELDS, "external_id", "company", "owner", "email_opt_in"]


@transaction.atomic
def lead_update(*, lead: Lead, data: Mapping[str, Any], actor: Membership) -> Lead:
    """A person's edit: values are normalized like captured data, and the
    quality verdict is recomputed from the edited values."""
    before = {name: getattr(lead, name) for name in {*EDITABLE_FIELDS, "country"}}
    values = {name: data.get(name, getattr(lead, name)) for name in EDITABLE_FIELDS}
    result = scrub_lead(values)
    cleaned = result.cleaned
    for name in EDITABLE_FIELDS:
        value = cleaned[name] if name in cleaned else values[name]
        if value is None:
            value = None if name == "company_size" else ""
        setattr(lead, name, value)
    lead.quality_reasons = result.reasons_as_dicts()
    lead.quality = str(result.quality)
    lead.reviewed_at = timezone.now()  # a person looked at it
    if not lead.email and not lead.external_id:
        raise LeadError("A lead needs an email address or a record id.")
    try:
        with transaction.atomic():
            lead.save()
    except IntegrityError as exc:
        raise LeadError(f"Another lead already uses {lead.email}.") from exc
    Activity.objects.create(
        organization_id=lead.organization_id,
        lead=lead,
        kind=ActivityKind.NOTE,
        occurred_at=timezone.now(),
        properties={"event": "edited", "by": actor.user.email},
    )
    changed = {
        name: [old, getattr(lead, name)]
        for name, old in sorted(before.items())
        if old != getattr(lead, name)
    }
    if changed:
        hooks.lead_updated.call(lead.organization_id, {lead.pk: changed})
    if duplicates.key_fields_changed(before, lead):
        duplicates.duplicates_refresh(organization_id=lead.organization_id, lead_ids=[lead.pk])
    return lead


def lead_approve(*, lead: Lead, actor: Membership) -> None:
    """A reviewer vouches for a suspect/junk lead: it leaves the review queue."""
    lead.quality = Quality.OK
    lead.reviewed_at = timezone.now()
    lead.save(update_fields=["quality", "reviewed_at", "updated_at"])


@transaction.atomic
def lead_discard(*, lead: Lead, actor: Membership) -> None:
    """Hide a junk lead. Its submissions and activities are kept."""
    lead.discarded_at = timezone.now()
    lead.reviewed_at = lead.discarded_at
    lead.save(update_fields=["discarded_at", "reviewed_at", "updated_at"])
    duplicates.duplicates_refresh(organization_id=lead.organization_id, lead_ids=[lead.pk])


def leads_assign_owner(*, leads: QuerySet[Lead], owner: Membership | None) -> int:
    if owner is not None and not owner.is_active:
        raise LeadError("That member is deactivated.")
    return leads.update(owner=owner, updated_at=timezone.now())


@transaction.atomic
def leads_add_to_campaign(*, leads: QuerySet[Lead], campaign: Campaign, actor: Membership) -> int:
    """Record a campaign touch on each lead (one INSERT) and make it their latest."""
    now = timezone.now()
    ids = list(leads.values_list("pk", flat=True))
    Activity.objects.bulk_create(
        [
            Activity(
                organization_id=campaign.organization_id,
                lead_id=pk,
                kind=ActivityKind.NOTE,
                occurred_at=now,
                campaign=campaign,
                properties={"event": "added_to_campaign", "by": actor.user.email},
            )
            for pk in ids
        ]
    )
    Lead.objects.filter(pk__in=ids).update(
        latest_campaign=campaign,
        latest_source=campaign.channel,
        latest_touch_at=now,
        updated_at=now,
    )
    return len(ids)


def leads_mark_junk(*, leads: QuerySet[Lead], actor: Membership) -> int:
    now = timezone.now()
    reason = {
        "code": "marked_junk",
        "field": "",
        "message": f"Marked as junk by {actor.user.email}",
        "severity": Quality.JUNK,
    }
    # One UPDATE; the reason list is replaced: a person's verdict overrides the scrubber's.
    return leads.order_by().update(
        quality=Quality.JUNK, quality_reasons=[reason], reviewed_at=None, updated_at=now
    )


def lead_label(lead: Lead) -> str:
    """A lead as a person tells two apart: "Zoe Park <zoe@a.example>"."""
    identity = lead.email or (f"#{lead.external_id}" if lead.external_id else f"lead {lead.pk}")
    return f"{lead.full_name} <{identity}>" if lead.full_name else identity


# Restored by an undo: every stored column but the identity of the row.
_NOT_RESTORED = {"id", "organization_id", "created_at", "updated_at"}


def lead_snapshot(lead: Lead) -> dict[str, Any]:
    """Every column of the lead as JSON (field attname -> value)."""
    out: dict[str, Any] = {}
    for f in Lead._meta.concrete_fields:
        value = getattr(lead, f.attname)
        if value is not None and not isinstance(value, str | int | float | bool | dict | list):
            value = value.isoformat() if hasattr(value, "isoformat") else str(value)
        out[f.attname] = value
    return out


def _restore(lead: Lead, snapshot: Mapping[str, Any]) -> None:
    for f in Lead._meta.concrete_fields:
        if f.attname in _NOT_RESTORED or f.attname not in snapshot:
            continue
        value = snapshot[f.attname]
        setattr(lead, f.attname, value if value is None else f.to_python(value))


def _merge_undo_hours() -> float:
    return float(getattr(settings, "LEAD_MERGE_UNDO_HOURS", 24))


def _lock_pair(organization_id: int, one: int, other: int) -> tuple[Lead, Lead]:
    """Both rows locked, in id order (two merges of the same pair can't deadlock)."""
    rows = {
        lead.pk: lead
        for lead in Lead.objects.select_for_update()
        .filter(organization_id=organization_id, pk__in=[one, other])
        .order_by("pk")
    }
    if len(rows) != 2:
        raise LeadError("Both leads must belong to this organization.")
    return rows[one], rows[other]


def _set_identities(keep: Lead, drop: Lead, email: str, external_id: str | None) -> None:
    """Give `keep` the chosen email and record id, and `drop` the ones keep no
    longer uses (both stay unique, and the old address still finds the kept
    lead through the merged record). A parking value frees the keys between."""
    old_email, old_ext = keep.email, keep.external_id
    drop_email, drop_ext = drop.email, drop.external_id
    if (email, external_id) == (old_email, old_ext):
        return
    drop.email, drop.external_id = f"merging-{drop.pk}@invalid", None
    drop.save(update_fields=["email", "external_id", "updated_at"])
    keep.email, keep.external_id = email, external_id
    keep.save(update_fields=["email", "external_id", "updated_at"])
    drop.email = old_email if email != old_email else drop_email
    drop.external_id = old_ext if external_id != old_ext else drop_ext
    if not drop.email and drop.external_id is None:
        drop.external_id = f"merged-{drop.pk}"  # a merged record still needs an identity
    drop.save(update_fields=["email", "external_id", "updated_at"])


@transaction.atomic
def lead_merge(
    *, keep: Lead, drop: Lead, chosen: Mapping[str, str], actor: Membership
) -> LeadMerge:
    """Merge `drop` into `keep`: per field (email and record id included) the
    chosen side's value wins; activities and submissions move to `keep`; the
    receivers of hooks.lead_merged keep the most advanced stage, the owner and
    the queue assignment, and rescore. `drop` stays (marked merged); both
    leads and the moved rows are snapshotted so the merge can be undone within
    LEAD_MERGE_UNDO_HOURS. Written to the audit log."""
    if keep.pk == drop.pk:
        raise LeadError("Pick two different leads.")
    if keep.organization_id != drop.organization_id:
        raise LeadError("Both leads must belong to this organization.")
    keep, drop = _lock_pair(keep.organization_id, keep.pk, drop.pk)
    if keep.merged_into_id or drop.merged_into_id:
        raise LeadError("One of these leads was already merged.")
    kept_snapshot, dropped_snapshot = lead_snapshot(keep), lead_snapshot(drop)
    labels = lead_label(keep), lead_label(drop)

    def pick(name: str):
        return getattr(drop if chosen.get(name) == "dropped" else keep, name)

    email, external_id = pick("email") or keep.email or drop.email, pick("external_id")
    if external_id is None:
        external_id = keep.external_id or None
    _set_identities(keep, drop, email, external_id)
    for name in MERGEABLE_FIELDS:
        if name not in ("email", "external_id") and chosen.get(name) == "dropped":
            setattr(keep, name, getattr(drop, name))
    keep.custom = {**(drop.custom or {}), **(keep.custom or {})}
    keep.email_opt_in = keep.email_opt_in or (
        drop.email_opt_in and chosen.get("email_opt_in") == "dropped"
    )
    keep.do_not_email = keep.do_not_email or drop.do_not_email
    keep.do_not_call = keep.do_not_call or drop.do_not_call
    keep.first_touch_at, keep.first_source, keep.first_campaign_id = min(
        (keep.first_touch_at or timezone.now(), keep.first_source, keep.first_campaign_id),
        (drop.first_touch_at or timezone.now(), drop.first_source, drop.first_campaign_id),
        key=lambda t: t[0],
    )
    keep.last_activity_at = max(
        filter(None, [keep.last_activity_at, drop.last_activity_at]), default=None
    )
    keep.save()
    activities = list(Activity.objects.filter(lead=drop).values_list("pk", flat=True))
    submissions = list(FormSubmission.objects.filter(lead=drop).values_list("pk", flat=True))
    Activity.objects.filter(pk__in=activities).update(lead=keep)
    FormSubmission.objects.filter(pk__in=submissions).update(lead=keep)
    drop.merged_into = keep
    drop.save(update_fields=["merged_into", "updated_at"])
    duplicates.duplicates_close_merged(kept_id=keep.pk, dropped_id=drop.pk, actor=actor)
    duplicates.duplicates_refresh(organization_id=keep.organization_id, lead_ids=[keep.pk, drop.pk])
    merge = LeadMerge.objects.create(
        organization_id=keep.organization_id,
        kept=keep,
        dropped=drop,
        merged_by=actor.user,
        chosen=dict(chosen),
        kept_snapshot=kept_snapshot,
        dropped_snapshot=dropped_snapshot,
        moved={"activities": activities, "submissions": submissions},
    )
    changes: dict[str, Any] = {}
    for result in hooks.lead_merged.call(keep.organization_id, keep.pk, drop.pk):
        changes.update(result or {})
    merge.moved = {**merge.moved, "hooks": changes}
    merge.save(update_fields=["moved"])
    _audit_merge(actor, "lead.merged", merge, f"{labels[1]} into {labels[0]}")
    return merge


def _audit_merge(actor: Membership, action: str, merge: LeadMerge, label: str) -> None:
    audit_record(
        organization=actor.organization,
        action=action,
        actor=actor,
        subject=merge.kept,
        label=label,
        data={"merge_id": merge.pk, "kept_id": merge.kept_id, "dropped_id": merge.dropped_id},
    )


def _verbose_name(name: str) -> Any:
    field = Lead._meta.get_field(name)
    # A chosen name is a field the merge form offers (MERGEABLE_FIELDS), never a
    # reverse relation; a generic relation has no label either.
    assert isinstance(field, Field)
    return field.verbose_name


def merge_plan(*, keep: Lead, drop: Lead, chosen: Mapping[str, str]) -> dict[str, Any]:
    """What lead_merge will do, for the confirmation step (two counts)."""
    rank = ["new", "recycled", "disqualified", "mql", "sal", "sql", "opportunity", "lost", "won"]
    stage_of = max(
        (keep, drop), key=lambda lead: rank.index(lead.stage) if lead.stage in rank else 0
    )
    owner = drop.owner if chosen.get("owner") == "dropped" else keep.owner
    return {
        "keep_label": lead_label(keep),
        "drop_label": lead_label(drop),
        "email": drop.email if chosen.get("email") == "dropped" and drop.email else keep.email,
        "stage": stage_of.get_stage_display(),
        "stage_from_dropped": stage_of is drop and drop.stage != keep.stage,
        "owner": owner,
        "activities": Activity.objects.filter(lead=drop).count(),
        "submissions": FormSubmission.objects.filter(lead=drop).count(),
        "changed": [
            _verbose_name(name)
            for name, side in chosen.items()
            if side == "dropped" and getattr(keep, name) != getattr(drop, name)
        ],
        "undo_hours": _merge_undo_hours(),
    }


def merge_undo_deadline(merge: LeadMerge):
    return merge.merged_at + timedelta(hours=_merge_undo_hours())


@transaction.atomic
def lead_merge_undo(*, merge: LeadMerge, actor: Membership) -> LeadMerge:
    """Restore both leads from their snapshots and move the moved rows back,
    within LEAD_MERGE_UNDO_HOURS of the merge; the hook receivers undo what
    they did (stage, assignment, score). Refused with the reason otherwise."""
    merge = LeadMerge.objects.select_for_update().get(pk=merge.pk)
    if merge.undone_at:
        raise LeadError("This merge was already undone.")
    if not merge.kept_snapshot:
        raise LeadError("This merge was made before merges could be undone.")
    if timezone.now() > merge_undo_deadline(merge):
        raise LeadError(
            f"This merge can no longer be undone: undo is possible for "
            f"{_merge_undo_hours():g} hours after merging, and it was merged on "
            f"{timezone.localtime(merge.merged_at):%Y-%m-%d %H:%M}."
        )
    keep, drop = _lock_pair(merge.organization_id, merge.kept_id, merge.dropped_id)
    if keep.merged_into_id or drop.merged_into_id != keep.pk:
        raise LeadError("The kept lead was merged again since; undo that merge first.")
    later = LeadMerge.objects.filter(
        kept_id=keep.pk, undone_at__isnull=True, merged_at__gt=merge.merged_at
    ).exists()
    if later:
        raise LeadError("A later merge into this lead must be undone first.")
    moved = merge.moved or {}
    Activity.objects.filter(pk__in=moved.get("activities", []), lead=keep).update(lead=drop)
    FormSubmission.objects.filter(pk__in=moved.get("submissions", []), lead=keep).update(lead=drop)
    drop.email, drop.external_id = f"merging-{drop.pk}@invalid", None
    drop.save(update_fields=["email", "external_id", "updated_at"])
    _restore(keep, merge.kept_snapshot)
    keep.save()
    _restore(drop, merge.dropped_snapshot)
    drop.save()
    merge.undone_at = timezone.now()
    merge.undone_by = actor.user
    merge.save(update_fields=["undone_at", "undone_by"])
    hooks.lead_unmerged.call(merge.organization_id, keep.pk, drop.pk, moved.get("hooks", {}))
    DuplicateCandidate.objects.filter(
        lead_a_id=min(keep.pk, drop.pk), lead_b_id=max(keep.pk, drop.pk)
    ).update(status=CandidateStatus.OPEN, decided_at=None, decided_by=None)
    duplicates.duplicates_refresh(organization_id=keep.organization_id, lead_ids=[keep.pk, drop.pk])
    label = f"{lead_label(drop)} split from {lead_label(keep)}"
    _audit_merge(actor, "lead.merge_undone", merge, label)
    return merge


def leads_deleted(*, organization_id: int, leads: list[Lead]) -> None:
    """Announce that these leads are about to be deleted (an erasure): call it
    inside the deleting transaction, before the rows go. Fires
    hooks.lead_deleted with what a CRM needs to find its copy (the
    lead.deleted webhook): our id and its record id, never the address — the
    delivery log outlives an erasure and must not keep the person's email."""
    if leads:
        hooks.lead_deleted.call(
            organization_id,
            [
                {
                    "id": lead.pk,
                    "external_id": lead.external_id,
                    "stage": lead.stage,
                }
                for lead in leads
            ],
        )
