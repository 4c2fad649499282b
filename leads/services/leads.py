"""Writes on existing leads: edit, review (approve / discard), bulk actions, merge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.forms.models import model_to_dict
from django.utils import timezone

from accounts.models import Membership
from leadflow.core.errors import LeadflowError
from leads.models import Activity, ActivityKind, Campaign, FormSubmission, Lead, LeadMerge, Quality
from leads.scrub import scrub_lead


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
    return lead


def lead_approve(*, lead: Lead, actor: Membership) -> None:
    """A reviewer vouches for a suspect/junk lead: it leaves the review queue."""
    lead.quality = Quality.OK
    lead.reviewed_at = timezone.now()
    lead.save(update_fields=["quality", "reviewed_at", "updated_at"])


def lead_discard(*, lead: Lead, actor: Membership) -> None:
    """Hide a junk lead. Its submissions and activities are kept."""
    lead.discarded_at = timezone.now()
    lead.reviewed_at = lead.discarded_at
    lead.save(update_fields=["discarded_at", "reviewed_at", "updated_at"])


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


@transaction.atomic
def lead_merge(
    *, keep: Lead, drop: Lead, chosen: Mapping[str, str], actor: Membership
) -> LeadMerge:
    """Merge `drop` into `keep`: per field, the chosen side's value wins; all
    activities and submissions move to `keep`; `drop` stays (marked merged) with
    a snapshot of its values, so nothing of its history is deleted."""
    if keep.pk == drop.pk:
        raise LeadError("Pick two different leads.")
    keep = Lead.objects.select_for_update().get(pk=keep.pk)
    drop = Lead.objects.select_for_update().get(pk=drop.pk)
    if keep.merged_into_id or drop.merged_into_id:
        raise LeadError("One of these leads was already merged.")
    snapshot = model_to_dict(drop, exclude=["organization"])
    snapshot["custom"] = drop.custom
    for name in MERGEABLE_FIELDS:
        if chosen.get(name) == "dropped":
            value = getattr(drop, name)
            if name in ("email", "external_id"):
                continue  # identities stay unique; the dropped one is kept as an alias
            setattr(keep, name, value)
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
    Activity.objects.filter(lead=drop).update(lead=keep)
    FormSubmission.objects.filter(lead=drop).update(lead=keep)
    drop.merged_into = keep
    drop.save(update_fields=["merged_into", "updated_at"])
    return LeadMerge.objects.create(
        organization_id=keep.organization_id,
        kept=keep,
        dropped=drop,
        merged_by=actor.user,
        chosen=dict(chosen),
        dropped_snapshot=_json_safe(snapshot),
    )


def _json_safe(values: dict) -> dict:
    out = {}
    for key, value in values.items():
        if value is None or isinstance(value, str | int | float | bool | dict | list):
            out[key] = value
        else:
            out[key] = str(value)
    return out
