"""Request and response shapes of the leads API (/api/v1/leads, /api/v1/activities).

Inputs reject unknown keys (a typo'd field name is an error, not silently
dropped); enumerations are spelled out so the OpenAPI document lists them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import annotated_types
from ninja import Field, Schema
from pydantic import (
    AfterValidator,
    BeforeValidator,
    StrictBool,
    StrictInt,
    model_validator,
)

from leadflow.core.api_schemas import PlainOut, StrictInput
from leadflow.core.errors import ApiError
from leads.models import Activity, ActivityKind, Channel, Lead, Quality
from leads.services.activities import MAX_BATCH, MAX_ID

ChannelValue = Literal[tuple(Channel.values)]  # type: ignore[valid-type]
ActivityKindValue = Literal[tuple(ActivityKind.values)]  # type: ignore[valid-type]
QualityValue = Literal[tuple(Quality.values)]  # type: ignore[valid-type]


def _integral(value: Any) -> Any:
    # JSON Schema counts 120.0 as an integer; anything else stays strict (no "120", no true).
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


JsonInt = Annotated[StrictInt, BeforeValidator(_integral)]
CampaignRef = JsonInt | str  # ids beyond MAX_ID name nothing: the services say "unknown"
# Integers stored as such are bounded by their column: larger ones are a 400,
# not a database overflow.
INT32_MAX = 2**31 - 1
# Longer values can't be an address or a record id: refuse them rather than truncate.
EMAIL_MAX_LENGTH = Lead._meta.get_field("email").max_length
EXTERNAL_ID_MAX_LENGTH = Lead._meta.get_field("external_id").max_length

_CAMPAIGN_HELP = "A campaign of your organization: its id (number) or its name (string)."


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_text(value: Any) -> Any:
    # Pydantic would read a number (or "0.5") as Unix time: only ISO 8601 text is a time here.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("Give a date-time as ISO 8601 text, e.g. 2025-01-31T09:00:00Z.")
    return value


def _in_utc(value: datetime) -> datetime:
    # Any RFC 3339 offset (up to ±23:59) is valid, but PostgreSQL stores only ±15:59:
    # compare and store in UTC, and refuse what falls off the calendar there.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("The date-time is out of range once converted to UTC.") from exc


def _int32_if_int(value: Any) -> Any:
    # Checked before the int | str union so the error names the field, not a union branch.
    value = _integral(value)
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= INT32_MAX:
        raise ValueError(f"Must be a whole number from 0 to {INT32_MAX:,}.")
    return value


ApiDatetime = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_in_utc)]


# --- Errors --------------------------------------------------------------------


class ErrorDetail(PlainOut):
    code: str = ""
    field: str = ""
    message: str


# --- Leads ---------------------------------------------------------------------


class LeadIn(StrictInput):
    """One lead. Identity: `email` (case-insensitive), else `external_id` (your record id)."""

    email: str | None = Field(None, max_length=EMAIL_MAX_LENGTH)
    external_id: str | None = Field(
        None, max_length=EXTERNAL_ID_MAX_LENGTH, description="Your CRM/list record id."
    )
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    phone: str | None = None
    company_name: str | None = None
    industry: str | None = None
    company_size: Annotated[
        Annotated[StrictInt, annotated_types.Interval(ge=0, le=INT32_MAX)] | str | None,
        BeforeValidator(_int32_if_int),
    ] = Field(None, description="Employees, e.g. 120 or '51-200'.")
    country: str | None = Field(None, description="Name or ISO code, e.g. 'Germany' or 'DE'.")
    city: str | None = None
    email_opt_in: StrictBool | None = Field(
        None, description="Consent is only ever added, never removed."
    )
    do_not_email: StrictBool | None = None
    do_not_call: StrictBool | None = None
    custom: dict[str, Any] = Field(default_factory=dict, description="Custom attributes.")
    properties: dict[str, Any] = Field(
        default_factory=dict, description="Stored on the activity (url, utm_*, …)."
    )
    source: ChannelValue | None = Field(None, description="Channel of this touch.")
    campaign: CampaignRef | None = Field(None, description=_CAMPAIGN_HELP)
    activity_kind: ActivityKindValue | None = Field(
        None, description="Record this touch as an activity of this kind, e.g. form_submit."
    )
    occurred_at: ApiDatetime | None = Field(
        None, description="When the touch happened (default: now)."
    )

    def lead_row(self) -> dict[str, Any]:
        """The row for the ingest engine: lead fields, custom attributes and properties."""
        touch_fields = {"source", "campaign", "activity_kind", "occurred_at"}
        return {
            k: v
            for k, v in self.model_dump(exclude=touch_fields).items()
            if v is not None and v != ""
        }


class CompanyOut(PlainOut):
    id: int
    name: str
    domain: str | None
    industry: str
    employee_count: int | None
    country: str


class LeadOut(PlainOut):
    id: int
    email: str
    external_id: str | None
    first_name: str
    last_name: str
    title: str
    phone: str
    company: CompanyOut | None
    company_name: str
    industry: str
    company_size: int | None
    country: str
    city: str
    first_source: str
    first_campaign_id: int | None
    first_touch_at: datetime | None
    latest_source: str
    latest_campaign_id: int | None
    latest_touch_at: datetime | None
    email_opt_in: bool
    email_opt_in_at: datetime | None
    email_opt_in_origin: str
    do_not_email: bool
    do_not_call: bool
    owner_id: int | None
    custom: dict[str, Any]
    quality: str
    quality_reasons: list[dict[str, Any]]
    merged_into_id: int | None
    discarded_at: datetime | None
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime | None


class ActivityOut(PlainOut):
    id: int
    kind: str
    occurred_at: datetime
    campaign_id: int | None
    properties: dict[str, Any]
    external_id: str | None
    created_at: datetime


class LeadDetailOut(LeadOut):
    activities: list[ActivityOut] = Field(
        ...,
        validation_alias="recent_activities",  # set by the handler, bounded
        description="The latest activities, newest first.",
    )


class LeadUpsertOut(Schema):
    outcome: Literal["created", "merged", "junk"] = Field(
        ..., description="junk: stored, but quarantined for review."
    )
    created: bool = Field(..., description="True when this call created the lead.")
    quality: QualityValue
    reasons: list[dict[str, Any]] = Field(..., description="Data-quality findings.")
    submission_id: int = Field(..., description="The stored raw request.")
    lead: LeadOut


LEAD_ORDERS = ("id", "-id", "updated_at", "-updated_at")


class LeadFilters(Schema):
    q: str | None = Field(None, description="Search name, email and company.")
    email: str | None = None
    external_id: str | None = None
    country: str | None = Field(None, description="Name or ISO code.")
    quality: QualityValue | None = None
    source: ChannelValue | None = Field(None, description="First or latest touch source.")
    campaign: int | None = Field(
        None, ge=1, le=MAX_ID, description="Campaign id of the first or latest touch."
    )
    owner: int | None = Field(None, ge=1, le=MAX_ID, description="Owner (membership) id.")
    created_after: ApiDatetime | None = None
    created_before: ApiDatetime | None = None
    updated_after: ApiDatetime | None = Field(None, description="For CRM sync: changed since.")
    include_inactive: bool = Field(False, description="Include merged and discarded leads.")
    order: Literal[LEAD_ORDERS] = "id"  # type: ignore[valid-type]
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, description="next_cursor of the previous page.")

    @model_validator(mode="after")
    def _ranges(self):
        if self.created_after and self.created_before and self.created_after > self.created_before:
            raise ValueError("created_after must not be later than created_before")
        return self


class LeadPageOut(Schema):
    items: list[LeadOut]
    next_cursor: str | None = Field(..., description="Pass as `cursor` for the next page.")
    has_more: bool


# --- Activities ----------------------------------------------------------------


class LeadRefIn(StrictInput):
    """Which lead: our `id`, your `external_id`, or `email` (first match in that order)."""

    id: JsonInt | None = None
    email: str | None = Field(None, max_length=EMAIL_MAX_LENGTH)
    external_id: str | None = Field(None, max_length=EXTERNAL_ID_MAX_LENGTH)


class ActivityIn(StrictInput):
    lead: LeadRefIn
    kind: str = Field(..., description=f"One of: {', '.join(ActivityKind.values)}.")
    occurred_at: ApiDatetime | None = Field(None, description="Required; 2000 to now + 1 day.")
    properties: dict[str, Any] = Field(default_factory=dict)
    campaign: CampaignRef | None = Field(None, description=_CAMPAIGN_HELP)
    external_id: str | None = Field(
        None,
        max_length=Activity._meta.get_field("external_id").max_length,
        description="Idempotency key: a re-post is reported as duplicate.",
    )


class ActivityBatchIn(StrictInput):
    activities: list[ActivityIn] = Field(
        ..., min_length=1, json_schema_extra={"maxItems": MAX_BATCH}
    )
    create_missing_leads: StrictBool = Field(
        False, description="Create leads named by email/external_id that don't exist yet."
    )
    source: ChannelValue | None = Field(None, description="Source of leads created here.")

    @model_validator(mode="before")
    @classmethod
    def _batch_size(cls, data: Any) -> Any:
        # Checked before the items are validated; not a ValueError so that it
        # surfaces as a 413 instead of one more field error.
        items = data.get("activities") if isinstance(data, dict) else None
        if isinstance(items, list) and len(items) > MAX_BATCH:
            raise ApiError(
                413,
                "batch_too_large",
                f"At most {MAX_BATCH:,} activities per call; got {len(items):,}. Split the batch.",
            )
        return data


class ActivityResultOut(PlainOut):
    index: int
    status: Literal["created", "duplicate", "error"]
    activity_id: int | None
    lead_id: int | None
    errors: list[ErrorDetail]


class ActivityBatchOut(PlainOut):
    created: int
    duplicates: int
    errors: int
    leads_created: int
    results: list[ActivityResultOut]
