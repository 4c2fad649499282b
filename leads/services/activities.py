"""Touchpoints that arrive over the JSON API: batches of activities, and the
single-lead upsert (which is a touch too).

Rules enforced here:

- every item of a batch is validated before anything is written, and each
  item gets its own verdict (created / duplicate / error); bad items never
  block good ones, and nothing half-written is left behind (one transaction);
- an activity's ``external_id`` is the sender's idempotency key (unique per
  organization): re-posting it inserts nothing and reports a duplicate;
- a batch costs a constant number of SQL statements whatever its size: one
  lookup of the referenced leads, one of campaigns, one of known external ids,
  the lead ingest for missing leads, the INSERT and one UPDATE of
  ``last_activity_at``;
- an API lead upsert stores the raw body first (a FormSubmission with channel
  "api"), then ingests, then records the outcome — nothing that arrived is lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Lower
from django.utils import timezone

from leadflow.core.errors import LeadflowError
from leadflow.core.inserts import insert_row
from leads.models import (
    Activity,
    ActivityKind,
    Campaign,
    FormSubmission,
    Lead,
    SubmissionChannel,
    SubmissionOutcome,
)
from leads.scrub import normalize_email
from leads.services.ingest import (
    IngestedTouch,
    Outcome,
    Touch,
    lead_ingest_batch,
    run_post_ingest_hooks,
)

MAX_BATCH = 1000
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)  # clients' clocks drift; further ahead is a bug
MAX_ATTEMPTS = 3
MAX_ID = 2**63 - 1  # a bigint primary key; larger numbers name nothing (and crash SQLite)


class ActivityError(LeadflowError):
    pass


class UnknownCampaign(LeadflowError):
    """A campaign reference that names no campaign of this organization."""


class LeadRejected(LeadflowError):
    """The lead data had no usable identity; reasons say why."""

    def __init__(self, reasons: list[dict]) -> None:
        self.reasons = reasons
        super().__init__("The lead has no usable email address or record id.")


def item_error(code: str, field: str, message: str) -> dict[str, str]:
    return {"code": code, "field": field, "message": message}


def check_occurred_at(value: datetime | None, now: datetime, name: str = "occurred_at"):
    """The aware time of a touch, or an error dict when it's implausible."""
    if value is None:
        return now, None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)  # no offset given: the API speaks UTC
    if value < EARLIEST:
        return value, item_error("too_early", name, f"{name} is before 2000-01-01.")
    if value > now + FUTURE_TOLERANCE:
        return value, item_error(
            "in_future", name, f"{name} is more than a day in the future ({value.isoformat()})."
        )
    return value, None


# --- Campaign references ----------------------------------------------------------


def _campaign_key(ref: int | str) -> tuple[str, Any]:
    if isinstance(ref, int):
        return ("id", ref)
    return ("name", str(ref).strip().lower())


def campaigns_by_ref(refs: Iterable[int | str]) -> dict[tuple[str, Any], Campaign]:
    """Resolve campaign references (an int is an id, a string a name, case-insensitive)
    of the active organization in one query; unknown references are simply absent."""
    keys = {_campaign_key(r) for r in refs if r is not None and r != ""}
    ids = [v for kind, v in keys if kind == "id" and 0 < v <= MAX_ID]
    names = [v for kind, v in keys if kind == "name"]
    if not keys:
        return {}
    found: dict[tuple[str, Any], Campaign] = {}
    rows = (
        Campaign.objects.annotate(lower_name=Lower("name"))
        .filter(Q(pk__in=ids) | Q(lower_name__in=names))
        .order_by("pk")
    )
    for campaign in rows:
        if campaign.pk in ids:
            found[("id", campaign.pk)] = campaign
        key = ("name", campaign.lower_name)
        # Names are unique per organization but only case-sensitively: first one wins.
        if campaign.lower_name in names and key not in found:
            found[key] = campaign
    return found


def campaign_resolve(ref: int | str | None) -> Campaign | None:
    if ref is None or ref == "":
        return None
    campaign = campaigns_by_ref([ref]).get(_campaign_key(ref))
    if campaign is None:
        raise UnknownCampaign(f"No campaign {ref!r} in this organization.")
    return campaign


# --- Single lead upsert (POST /api/v1/leads) -------------------------------------


@dataclass
class LeadUpsertResult:
    outcome: str  # created | merged | junk
    created: bool
    lead: Lead
    reasons: list[dict]
    submission: FormSubmission


def api_submission_store(
    *, organization_id: int, payload: Any, user_agent: str = ""
) -> FormSubmission:
    """Keep the request body exactly as received, before anything else happens."""
    submission = FormSubmission(
        organization_id=organization_id,
        form=None,
        channel=SubmissionChannel.API,
        payload=payload,
        user_agent=(user_agent or "")[:500],
    )
    insert_row(submission)  # the statement compiled once (every API write stores one)
    return submission


def api_submission_reject(*, submission: FormSubmission, reasons: list[dict]) -> None:
    """The submission could not become a lead: keep it, marked invalid, with why."""
    _record_outcome(submission, SubmissionOutcome.INVALID, reasons, lead_id=None)


def _record_outcome(submission, outcome: str, reasons: list[dict], lead_id: int | None) -> None:
    submission.outcome = outcome
    submission.outcome_reasons = reasons
    submission.lead_id = lead_id
    submission.processed_at = timezone.now()
    submission.attempts += 1
    submission.save(
        update_fields=["outcome", "outcome_reasons", "lead", "processed_at", "attempts"]
    )


_SUBMISSION_OUTCOMES = {
    Outcome.CREATED: SubmissionOutcome.CREATED,
    Outcome.MERGED: SubmissionOutcome.MERGED,
    Outcome.JUNK: SubmissionOutcome.JUNK,
}


def lead_upsert(
    *,
    organization_id: int,
    submission: FormSubmission,
    row: Mapping[str, Any],
    campaign: int | str | None = None,
    source: str = "",
    activity_kind: str | None = None,
    occurred_at: datetime | None = None,
    consent_origin: str = "",
) -> LeadUpsertResult:
    """Create or merge one lead (identity: email, else external_id) from a stored
    API submission, and record the submission's outcome. A campaign of another
    organization is unknown here; a row without identity is rejected with the
    scrub reasons — in both cases the submission stays, marked invalid."""
    now = timezone.now()
    try:
        resolved = campaign_resolve(campaign)
    except UnknownCampaign as exc:
        api_submission_reject(
            submission=submission, reasons=[item_error("unknown_campaign", "campaign", str(exc))]
        )
        raise
    at, problem = check_occurred_at(occurred_at, now)
    if problem:
        api_submission_reject(submission=submission, reasons=[problem])
        raise ActivityError(problem["message"])
    touch = Touch(
        source=source or (resolved.channel if resolved else ""),
        campaign=resolved,
        activity_kind=activity_kind or None,
        activity_properties={"channel": "api", "submission_id": submission.pk},
        consent_origin=consent_origin,
        submission=submission,
    )
    with transaction.atomic(savepoint=False):  # a part of the caller's transaction, if any
        (result,) = lead_ingest_batch(
            organization_id=organization_id, rows=[{**row, "occurred_at": at}], touch=touch
        )
        if result.outcome == Outcome.INVALID:
            api_submission_reject(submission=submission, reasons=result.reasons)
        elif not result.outcome_recorded:  # else written with the new lead
            _record_outcome(
                submission, _SUBMISSION_OUTCOMES[result.outcome], result.reasons, result.lead_id
            )
    if result.outcome == Outcome.INVALID:
        raise LeadRejected(result.reasons)
    lead = result.lead
    if lead is None:
        assert result.lead_id is not None  # only an INVALID row names no lead
        lead = Lead.objects.select_related("company").get(pk=result.lead_id)
    return LeadUpsertResult(
        outcome=result.outcome,
        # RowResult says "junk" for new and merged junk alike; the row's age tells.
        created=result.outcome == Outcome.CREATED
        or (result.outcome == Outcome.JUNK and lead.created_at >= now),
        lead=lead,
        reasons=result.reasons,
        submission=submission,
    )


# --- Activity batches (POST /api/v1/activities) -----------------------------------


@dataclass
class ActivityItemResult:
    index: int
    status: str = "created"  # created | duplicate | error
    activity_id: int | None = None
    lead_id: int | None = None
    errors: list[dict] = field(default_factory=list)


@dataclass
class ActivityBatchResult:
    results: list[ActivityItemResult]
    leads_created: int = 0
    lead_ids: list[int] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


@dataclass
class _Item:
    index: int
    kind: str
    occurred_at: datetime
    properties: dict
    external_id: str | None
    lead_id_ref: int | None
    email: str | None
    lead_external_id: str | None
    campaign_ref: int | str | None
    result: ActivityItemResult
    campaign: Campaign | None = None
    twin: _Item | None = None  # the earlier item of this batch with the same external_id

    def fail(self, code: str, field_name: str, message: str) -> None:
        self.result.status = "error"
        self.result.errors.append(item_error(code, field_name, message))

    @property
    def ok(self) -> bool:
        return self.result.status != "error"

    @property
    def matched_lead_id(self) -> int:
        """The lead of an item that was not rejected (_write matched or created it)."""
        lead_id = self.result.lead_id
        assert lead_id is not None  # every item still ok or "created" has its lead
        return lead_id


_KINDS = frozenset(ActivityKind.values)


def _clean_str(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _parse_item(index: int, raw: Mapping[str, Any], now: datetime) -> _Item:
    lead_ref = raw.get("lead") or {}
    email = _clean_str(lead_ref.get("email"))
    item = _Item(
        index=index,
        kind=str(raw.get("kind") or ""),
        occurred_at=now,
        properties=dict(raw.get("properties") or {}),
        external_id=_clean_str(raw.get("external_id")),
        lead_id_ref=lead_ref.get("id"),
        email=(normalize_email(email).email or email.lower()) if email else None,
        lead_external_id=_clean_str(lead_ref.get("external_id")),
        campaign_ref=raw.get("campaign"),
        result=ActivityItemResult(index=index),
    )
    if item.kind not in _KINDS:
        item.fail(
            "unknown_kind",
            "kind",
            f"Unknown activity kind {item.kind!r}; use one of: {', '.join(sorted(_KINDS))}.",
        )
    item.occurred_at, problem = check_occurred_at(raw.get("occurred_at"), now)
    if raw.get("occurred_at") is None:
        item.fail("required", "occurred_at", "occurred_at is required.")
    elif problem:
        item.fail(problem["code"], problem["field"], problem["message"])
    if item.lead_id_ref is None and not item.email and not item.lead_external_id:
        item.fail("lead_missing", "lead", "Name the lead by id, email or external_id.")
    return item


def _resolve_campaigns(items: list[_Item]) -> None:
    refs = [i.campaign_ref for i in items]
    campaigns = campaigns_by_ref(ref for ref in refs if ref is not None and ref != "")
    for item in items:
        if item.campaign_ref is None or item.campaign_ref == "":
            continue
        item.campaign = campaigns.get(_campaign_key(item.campaign_ref))
        if item.campaign is None:
            item.fail(
                "unknown_campaign",
                "campaign",
                f"No campaign {item.campaign_ref!r} in this organization.",
            )


def _find_leads(items: list[_Item]) -> tuple[dict, dict, dict]:
    """One query for every lead the batch names; merged leads point at their survivor."""
    ids = {
        i.lead_id_ref for i in items if i.lead_id_ref is not None and 0 < i.lead_id_ref <= MAX_ID
    }
    emails = {i.email for i in items if i.email}
    ext_ids = {i.lead_external_id for i in items if i.lead_external_id}
    by_id: dict[int, int] = {}
    by_email: dict[str, int] = {}
    by_ext: dict[str, int] = {}
    if not (ids or emails or ext_ids):
        return by_id, by_email, by_ext
    rows = Lead.objects.filter(
        Q(pk__in=ids) | Q(email__in=emails) | Q(external_id__in=ext_ids)
    ).values_list("pk", "email", "external_id", "merged_into_id")
    for pk, email, external_id, merged_into_id in rows:
        target = merged_into_id or pk
        by_id[pk] = target
        if email:
            by_email[email] = target
        if external_id:
            by_ext[external_id] = target
    return by_id, by_email, by_ext


def _match_lead(item: _Item, by_id: dict, by_email: dict, by_ext: dict) -> int | None:
    # Priority: our id, then the sender's record id, then the email address.
    if item.lead_id_ref is not None:
        return by_id.get(item.lead_id_ref)
    return by_ext.get(item.lead_external_id) or by_email.get(item.email)


def _create_missing(items: list[_Item], touch: Touch, organization_id: int) -> int:
    """Create the leads the batch names by email/external_id that don't exist yet;
    returns how many were created."""
    rows = [{"email": i.email or "", "external_id": i.lead_external_id} for i in items]
    results = lead_ingest_batch(organization_id=organization_id, rows=rows, touch=touch)
    created: set[int] = set()
    for item, row_result in zip(items, results, strict=True):
        if row_result.outcome == Outcome.INVALID:
            reasons = "; ".join(r["message"] for r in row_result.reasons) or "no usable identity"
            item.fail("lead_invalid", "lead", f"Could not create the lead: {reasons}")
            continue
        item.result.lead_id = row_result.lead_id
        # They were missing a moment ago in this transaction: new, junk or not
        # (only a concurrent writer could have merged one in between).
        if row_result.outcome != Outcome.MERGED:
            created.add(item.matched_lead_id)
    return len(created)


def _mark_duplicates(items: list[_Item]) -> list[_Item]:
    """Items whose external_id is already stored (or repeated in the batch) are
    duplicates; returns the items still to insert."""
    ext_ids = {i.external_id for i in items if i.external_id}
    known = {}
    if ext_ids:
        known = {
            ext: (pk, lead_id)
            for ext, pk, lead_id in Activity.objects.filter(external_id__in=ext_ids).values_list(
                "external_id", "pk", "lead_id"
            )
        }
    to_insert: list[_Item] = []
    first_in_batch: dict[str, _Item] = {}
    for item in items:
        if item.external_id in known:
            item.result.status = "duplicate"
            item.result.activity_id, item.result.lead_id = known[item.external_id]
        elif item.external_id and item.external_id in first_in_batch:
            item.result.status = "duplicate"
            item.twin = first_in_batch[item.external_id]
            item.result.lead_id = item.twin.result.lead_id
        else:
            if item.external_id:
                first_in_batch[item.external_id] = item
            to_insert.append(item)
    return to_insert


def _write(
    organization_id: int, items: list[_Item], create_missing_leads: bool, touch: Touch
) -> int:
    by_id, by_email, by_ext = _find_leads(items)
    missing: list[_Item] = []
    for item in items:
        item.result.status = "created"
        item.result.lead_id = _match_lead(item, by_id, by_email, by_ext)
        if item.result.lead_id is not None:
            continue
        if create_missing_leads and item.lead_id_ref is None:
            missing.append(item)
        else:
            item.fail("unknown_lead", "lead", "No such lead in this organization.")
    leads_created = _create_missing(missing, touch, organization_id) if missing else 0
    to_insert = _mark_duplicates([i for i in items if i.ok])
    created = Activity.objects.bulk_create(
        [
            Activity(
                organization_id=organization_id,
                lead_id=item.matched_lead_id,
                kind=item.kind,
                occurred_at=item.occurred_at,
                campaign_id=item.campaign.pk if item.campaign else None,
                properties=item.properties,
                external_id=item.external_id,
            )
            for item in to_insert
        ]
    )
    for item, activity in zip(to_insert, created, strict=True):
        item.result.activity_id = activity.pk
    for item in items:
        if item.twin is not None:
            item.result.activity_id = item.twin.result.activity_id
    return leads_created


def _bump_last_activity(lead_ids: list[int]) -> None:
    latest = (
        Activity.objects.filter(lead_id=OuterRef("pk"))
        .order_by("-occurred_at")
        .values("occurred_at")[:1]
    )
    Lead.objects.filter(pk__in=lead_ids).update(last_activity_at=Subquery(latest))


def activity_record_batch(
    *,
    organization_id: int,
    items: list[Mapping[str, Any]],
    create_missing_leads: bool = False,
    source: str = "",
    consent_origin: str = "",
) -> ActivityBatchResult:
    """Validate every item, then insert the good ones in one transaction.

    Item keys: lead ({id | email | external_id}), kind, occurred_at, properties,
    campaign (id or name), external_id (idempotency key). Leads named by email or
    external_id that don't exist are created when create_missing_leads is set.
    Call it inside the organization's scope.
    """
    if len(items) > MAX_BATCH:
        raise ActivityError(f"At most {MAX_BATCH:,} activities per call; got {len(items):,}.")
    now = timezone.now()
    parsed = [_parse_item(index, raw, now) for index, raw in enumerate(items)]
    touch = Touch(source=source, consent_origin=consent_origin)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        valid = [i for i in parsed if i.ok]
        # Only a stored external_id can make the INSERT fail (and the batch retry
        # from a savepoint); without any, the caller's transaction is joined as is.
        retryable = any(i.external_id for i in valid)
        try:
            with transaction.atomic(savepoint=retryable):
                _resolve_campaigns(valid)
                leads_created = _write(
                    organization_id, [i for i in valid if i.ok], create_missing_leads, touch
                )
                # Leads that got a new activity (duplicates touched nothing).
                lead_ids = sorted(
                    {i.matched_lead_id for i in parsed if i.result.status == "created"}
                )
                if lead_ids:
                    _bump_last_activity(lead_ids)
                    touched = IngestedTouch(
                        activity_kinds=frozenset(
                            i.kind for i in parsed if i.result.status == "created"
                        ),
                        form_ids=frozenset(),
                    )
                    run_post_ingest_hooks(organization_id, lead_ids, touched)
            break
        except IntegrityError:
            # A concurrent call stored one of these external ids first: start over
            # from the validated items; the retry reports it as a duplicate.
            if attempt == MAX_ATTEMPTS:
                raise
            parsed = [_parse_item(index, raw, now) for index, raw in enumerate(items)]
    return ActivityBatchResult(
        results=[i.result for i in parsed], leads_created=leads_created, lead_ids=lead_ids
    )
