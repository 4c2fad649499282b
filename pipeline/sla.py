"""Speed-to-lead clocks: when a first touch and an accept are due, counted in
the organization's business hours when the policy says so.

Pure functions over the policy; the breach sweep is pipeline.services.sla."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leads.models import ActivityKind
from pipeline.models import PipelinePolicy

# How a lead arrived (its latest touch of these kinds) picks its first-touch time.
ARRIVAL_KINDS: dict[str, str] = {
    ActivityKind.DEMO_REQUEST: "demo_request",
    ActivityKind.FORM_SUBMIT: "contact_request",  # a hosted contact form
    ActivityKind.CONTENT_DOWNLOAD: "content_download",
}
MAX_DAYS_SCANNED = 400  # a policy with one 1-minute business day a week still ends


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def first_touch_minutes(policy: PipelinePolicy, activity_kind: str | None) -> int:
    table = policy.sla_first_touch_minutes or {}
    key = ARRIVAL_KINDS.get(activity_kind or "", "default")
    return int(table.get(key, table.get("default", 60)))


def add_business_minutes(
    start: datetime, minutes: int, policy: PipelinePolicy, tz: str
) -> datetime:
    """`start` + `minutes`, skipping time outside business hours if the policy asks."""
    if not policy.business_hours_only:
        return start + timedelta(minutes=minutes)
    hours = policy.business_hours or {}
    tzinfo = zone(tz)
    open_at = time.fromisoformat(hours.get("start", "09:00"))
    close_at = time.fromisoformat(hours.get("end", "17:00"))
    days = set(hours.get("days", [0, 1, 2, 3, 4]))
    local = start.astimezone(tzinfo)
    remaining = timedelta(minutes=minutes)
    for _ in range(MAX_DAYS_SCANNED):
        day = local.date()
        day_open = datetime.combine(day, open_at, tzinfo)
        day_close = datetime.combine(day, close_at, tzinfo)
        if day.weekday() in days and local < day_close:
            cursor = max(local, day_open)
            if cursor + remaining <= day_close:
                return cursor + remaining
            remaining -= day_close - cursor
        local = datetime.combine(day + timedelta(days=1), time(0), tzinfo)
    return start + timedelta(minutes=minutes)  # no business time at all: plain clock


def due_times(
    policy: PipelinePolicy, tz: str, assigned_at: datetime, activity_kind: str | None
) -> tuple[datetime, datetime]:
    """(first_touch_due_at, accept_due_at) of an assignment made at `assigned_at`."""
    first = add_business_minutes(
        assigned_at, first_touch_minutes(policy, activity_kind), policy, tz
    )
    accept = add_business_minutes(assigned_at, policy.sla_accept_hours * 60, policy, tz)
    return first, accept


# A rep is warned that a deadline is near once this share of its window has passed.
AT_RISK_SHARE = 0.8


def at_risk_at(assigned_at: datetime, due_at: datetime | None) -> datetime | None:
    """When an assignment's nearest deadline turns "at risk" (80 % of the window)."""
    if due_at is None:
        return None
    return assigned_at + (due_at - assigned_at) * AT_RISK_SHARE
