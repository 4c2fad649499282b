"""The organization's pipeline policy: read it (created on demand) and validate it."""

from __future__ import annotations

import re
from typing import Any

from leads.models import ActivityKind
from pipeline.errors import RoutingConfigError
from pipeline.models import Bant, BreachAction, PipelinePolicy

SLA_KINDS = ("demo_request", "contact_request", "default", "content_download")
PQL_KINDS = (ActivityKind.PRODUCT_EVENT.value, ActivityKind.TRIAL_SIGNUP.value)
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MAX_SLA_MINUTES = 60 * 24 * 14


def policy_get(*, organization_id: int) -> PipelinePolicy:
    """The organization's policy; the defaults are stored the first time it is read."""
    policy, _ = PipelinePolicy.objects.get_or_create(organization_id=organization_id)
    return policy


def _minutes(value: Any, what: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise RoutingConfigError(f"{what} must be a whole number of minutes.") from None
    if not 1 <= number <= MAX_SLA_MINUTES:
        raise RoutingConfigError(f"{what} must be between 1 minute and 14 days.")
    return number


def clean_policy(policy: PipelinePolicy) -> None:
    """Normalize the JSON settings in place; raise RoutingConfigError on bad values."""
    bant = list(dict.fromkeys(policy.bant_required or []))
    unknown = [part for part in bant if part not in Bant.values]
    if unknown:
        raise RoutingConfigError(f"Unknown BANT part(s): {', '.join(map(str, unknown))}.")
    policy.bant_required = [part for part in Bant.values if part in bant]

    sla = dict(policy.sla_first_touch_minutes or {})
    unknown = [key for key in sla if key not in SLA_KINDS]
    if unknown:
        raise RoutingConfigError(f"Unknown SLA lead type(s): {', '.join(map(str, unknown))}.")
    if "default" not in sla:
        raise RoutingConfigError("The first-touch SLA needs a default time.")
    policy.sla_first_touch_minutes = {
        key: _minutes(value, f"First touch for {key.replace('_', ' ')}")
        for key, value in sla.items()
    }

    hours = dict(policy.business_hours or {})
    start, end = str(hours.get("start", "")), str(hours.get("end", ""))
    if not (_HHMM.match(start) and _HHMM.match(end)) or start >= end:
        raise RoutingConfigError("Business hours need a start and a later end, as HH:MM.")
    try:
        days = sorted({int(day) for day in hours.get("days", [])})
    except (TypeError, ValueError):
        raise RoutingConfigError("Business days are weekday numbers (0 = Monday).") from None
    if not days or any(not 0 <= day <= 6 for day in days):
        raise RoutingConfigError("Pick at least one business day (0 = Monday … 6 = Sunday).")
    policy.business_hours = {"start": start, "end": end, "days": days}

    if policy.breach_action not in BreachAction.values:
        raise RoutingConfigError("After a second missed window, reassign or recycle.")
    currency = str(policy.default_currency or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise RoutingConfigError("The currency is a three-letter code such as USD or EUR.")
    policy.default_currency = currency
    policy.pql_rules = [clean_pql_rule(rule) for rule in (policy.pql_rules or [])]


def clean_pql_rule(rule: Any) -> dict:
    """{kind, min_count, [window_days], [field, operator, value]} — a PQL rule."""
    from scoring.engine import property_condition
    from scoring.fields import RuleError

    if not isinstance(rule, dict):
        raise RoutingConfigError("A product-usage rule is an object with kind and min_count.")
    kind = rule.get("kind")
    if kind not in PQL_KINDS:
        raise RoutingConfigError("Product-usage rules count product events or trial sign-ups.")
    try:
        min_count = int(rule.get("min_count", 1))
        window = int(rule["window_days"]) if rule.get("window_days") else None
    except (TypeError, ValueError):
        raise RoutingConfigError("Counts and windows are whole numbers.") from None
    if not 1 <= min_count <= 10_000 or (window is not None and not 1 <= window <= 3650):
        raise RoutingConfigError("The count is 1–10,000 and the window 1–3,650 days.")
    cleaned: dict[str, Any] = {"kind": kind, "min_count": min_count}
    if window:
        cleaned["window_days"] = window
    if rule.get("field"):
        try:
            property_condition(
                str(rule["field"]), str(rule.get("operator") or "eq"), rule.get("value")
            )
        except RuleError as exc:
            raise RoutingConfigError(f"Product-usage rule: {exc}") from None
        cleaned.update(
            field=str(rule["field"]),
            operator=str(rule.get("operator") or "eq"),
            value=rule.get("value"),
        )
    return cleaned
