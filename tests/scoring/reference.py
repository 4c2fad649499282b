"""A plain-Python reference evaluator of the scoring specification.

It reads the specification (the docstring of scoring/engine.py and the field
semantics documented in scoring/fields.py) and evaluates one lead at a time in
Python, deliberately sharing no code with the SQL engine: it imports only enums
from scoring.models. The property-based test compares the two.

Inputs are plain data: dicts or objects with the same attribute names as the
models (`ScoringRule`, `ScoreGroup`, `GatingRule`, `ScoringSettings`, `Lead`,
`Company`, `Activity`). A lead carries `company` (a company or None), `custom`
(a dict) and `activities`; an activity carries `kind`, `occurred_at`,
`properties` and `campaign` (a campaign name, an object with `.name`, or None).

Semantics, briefly:
- text comparisons are case-insensitive; a missing value behaves like "";
  contains/starts-with take the value literally (no wildcards);
- numeric comparisons on a missing or non-numeric value are false, except
  "not equal", which holds like "not in" (a custom
  attribute is a number when it is a JSON number or text that reads as a plain
  decimal, such as "150" or " -2.5 ");
- `email_domain` is the part of the email after the last "@";
- engagement points decay with 0.5 ** (age_days / half_life), the half-life
  being the rule's, else its group's, else the organization's (none = no decay);
- scores are rounded half up: floor(x + 0.5).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from scoring.models import Operator, RuleKind

GRADES = ("A", "B", "C", "D")  # best first; below D is F
TEXT_OPS = {
    Operator.EQUALS,
    Operator.NOT_EQUALS,
    Operator.IN,
    Operator.NOT_IN,
    Operator.CONTAINS,
    Operator.NOT_CONTAINS,
    Operator.STARTS_WITH,
    Operator.EMPTY,
    Operator.NOT_EMPTY,
}
NUMERIC_OPS = {Operator.GT, Operator.GTE, Operator.LT, Operator.LTE, Operator.BETWEEN}
TRUE_WORDS = {"1", "true", "yes", "on"}

# The fields a fit or gating rule may test: name -> (kind, getter).
TEXT, NUMBER, BOOL = "text", "number", "bool"
_LEAD_TEXT = (
    "title",
    "first_name",
    "last_name",
    "email",
    "company_name",
    "industry",
    "country",
    "city",
    "first_source",
    "latest_source",
    "quality",
)
FIELD_KINDS: dict[str, str] = {
    **{name: TEXT for name in _LEAD_TEXT},
    "email_domain": TEXT,
    "company_size": NUMBER,
    "email_opt_in": BOOL,
    "company.industry": TEXT,
    "company.country": TEXT,
    "company.domain": TEXT,
    "company.employee_count": NUMBER,
    "company.annual_revenue": NUMBER,
}


def get(obj: Any, name: str, default: Any = None) -> Any:
    """An attribute of a model-like object, or a key of a dict."""
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def ident(obj: Any) -> Any:
    return get(obj, "pk", None) if get(obj, "pk", None) is not None else get(obj, "id")


def half_up(x: float) -> int:
    return math.floor(x + 0.5)


# --- Values ------------------------------------------------------------------


def as_number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a yes/no is not a number")
    try:
        return float(Decimal(str(value).strip()))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None


def as_list(value: Any) -> list[str]:
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(v).strip() for v in items if str(v).strip()]


def as_text(value: Any) -> str:
    return str(value if value is not None else "").strip()


def json_text(value: Any) -> str:
    """A JSON value (custom attribute, activity property) read as text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return str(value)


def json_number(value: Any) -> float | None:
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+(\.[0-9]+)?\s*", value):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _number_text(number: float | None) -> str:
    if number is None:
        return ""
    return str(int(number)) if number == int(number) else repr(number)


def field_value(lead: Any, name: str) -> tuple[str, Any]:
    """(kind, value) of a lead's field: text as str, numbers as float|None."""
    if name.startswith("custom."):
        return "custom", (get(lead, "custom") or {}).get(name.removeprefix("custom."))
    kind = FIELD_KINDS[name]
    if name == "email_domain":
        email = get(lead, "email") or ""
        return kind, email.rpartition("@")[2] if "@" in email else ""
    if name.startswith("company."):
        raw = get(get(lead, "company"), name.removeprefix("company."))
    else:
        raw = get(lead, name)
    if kind == NUMBER:
        return kind, None if raw is None else float(raw)
    if kind == BOOL:
        return kind, bool(raw)
    return kind, raw or ""


# --- Conditions --------------------------------------------------------------


def text_matches(text: str, operator: str, value: Any) -> bool:
    text = text.lower()
    if operator == Operator.EMPTY:
        return text == ""
    if operator == Operator.NOT_EMPTY:
        return text != ""
    if operator in (Operator.IN, Operator.NOT_IN):
        hit = text in {v.lower() for v in as_list(value)}
        return hit if operator == Operator.IN else not hit
    needle = as_text(value).lower()
    if operator == Operator.EQUALS:
        return text == needle
    if operator == Operator.NOT_EQUALS:
        return text != needle
    if operator == Operator.CONTAINS:
        return needle in text
    if operator == Operator.NOT_CONTAINS:
        return needle not in text
    if operator == Operator.STARTS_WITH:
        return text.startswith(needle)
    raise ValueError(f"{operator} does not apply to text")


def number_matches(number: float | None, operator: str, value: Any) -> bool:
    if operator == Operator.EMPTY:
        return number is None
    if operator == Operator.NOT_EMPTY:
        return number is not None
    if operator in (Operator.IN, Operator.NOT_IN):
        wanted = set()
        for item in as_list(value):
            try:
                wanted.add(as_number(item))
            except ValueError:
                continue
        hit = number is not None and number in wanted
        return hit if operator == Operator.IN else not hit
    if operator in (Operator.CONTAINS, Operator.NOT_CONTAINS, Operator.STARTS_WITH):
        return text_matches(_number_text(number), operator, value)
    if operator == Operator.NOT_EQUALS:  # like "not in": unknown is not equal
        return number is None or number != as_number(value)
    if number is None:  # unknown is never a match of a comparison
        return False
    if operator == Operator.BETWEEN:
        low, high = sorted(
            as_number(v) for v in (value if isinstance(value, list) else str(value).split(","))
        )
        return low <= number <= high
    target = as_number(value)
    return {
        Operator.GT: number > target,
        Operator.GTE: number >= target,
        Operator.LT: number < target,
        Operator.LTE: number <= target,
        Operator.EQUALS: number == target,
        Operator.NOT_EQUALS: number != target,
    }[operator]


def condition_holds(lead: Any, name: str, operator: str, value: Any) -> bool:
    """A fit or gating condition on one lead."""
    kind, actual = field_value(lead, name)
    if kind == BOOL:
        wanted = str(value).strip().lower() in TRUE_WORDS
        return actual == wanted if operator == Operator.EQUALS else actual != wanted
    if kind == NUMBER:
        return number_matches(actual, operator, value)
    if kind == "custom":
        if operator in NUMERIC_OPS:
            return number_matches(json_number(actual), operator, value)
        return text_matches(json_text(actual), operator, value)
    if name == "email_domain" and operator in (
        Operator.EQUALS,
        Operator.NOT_EQUALS,
        Operator.IN,
        Operator.NOT_IN,
    ):
        domains = {d.lower().lstrip("@") for d in as_list(value)}
        hit = actual.lower() in domains
        return hit if operator in (Operator.EQUALS, Operator.IN) else not hit
    return text_matches(actual, operator, value)


# --- Engagement --------------------------------------------------------------


def property_text(activity: Any, key: str) -> str:
    if key == "campaign":
        campaign = get(activity, "campaign")
        name = campaign if isinstance(campaign, str) or campaign is None else get(campaign, "name")
        return name or ""
    return json_text((get(activity, "properties") or {}).get(key))


def activity_counts(rule: Any, activity: Any, now: datetime) -> bool:
    """Does this activity count for this engagement rule?"""
    if get(activity, "kind") not in (get(rule, "activity_kinds") or []):
        return False
    window = get(rule, "window_days")
    if window and get(activity, "occurred_at") < now - timedelta(days=window):
        return False
    key, operator = get(rule, "field"), get(rule, "operator")
    if key and operator:
        return text_matches(property_text(activity, key), operator, get(rule, "value"))
    return True


def half_life(rule: Any, settings: Any) -> float | None:
    return (
        get(rule, "half_life_days")
        or get(get(rule, "group"), "half_life_days")
        or get(settings, "half_life_days")
    )


def weight(occurred_at: datetime, now: datetime, days: float | None) -> float:
    if not days:
        return 1.0
    age = max((now - occurred_at).total_seconds() / 86400, 0.0)
    return 0.5 ** (age / days)


def engagement_points(rule: Any, activities: Iterable[Any], settings: Any, now: datetime) -> float:
    matches = sorted(
        (a for a in activities if activity_counts(rule, a, now)),
        key=lambda a: get(a, "occurred_at"),
    )
    if not matches or len(matches) < max(get(rule, "min_count") or 0, 1):
        return 0.0
    days = half_life(rule, settings)
    weights = [weight(get(a, "occurred_at"), now, days) for a in matches]
    points = get(rule, "points")
    if get(rule, "first_only"):
        raw = points * weights[0]
    elif get(rule, "per_occurrence"):
        raw = points * sum(weights)
    else:
        raw = points * weights[-1]  # once: the newest match
    cap = get(rule, "max_points")
    if cap is None:
        return raw
    # The cap bounds the contribution towards zero, whatever the sign of the rule.
    return min(raw, abs(cap)) if points >= 0 else max(raw, -abs(cap))


# --- The score -----------------------------------------------------------------


@dataclass
class LeadScore:
    fit_raw: float
    engagement_raw: float
    total_raw: float
    breakdown_raw: dict[str, float]
    gating_reason: str
    fit: int = 0
    engagement: int = 0
    total: int = 0
    grade: str = ""
    band: str = ""
    mql: bool = False
    breakdown: dict[str, int] = field(default_factory=dict)


def grade_for(fit: int, settings: Any) -> str:
    bands = get(settings, "grade_bands") or {}
    for grade in GRADES:
        if bands.get(grade) is not None and fit >= int(bands[grade]):
            return grade
    return "F"


def band_for(total: int, settings: Any) -> str:
    bands = get(settings, "temperature_bands") or {}
    if total >= int(bands.get("hot", 100)):
        return "hot"
    if total >= int(bands.get("warm", 40)):
        return "warm"
    return "cold"


def mql_for(total: int, grade: str, gating_reason: str, settings: Any) -> bool:
    minimum = get(settings, "min_fit_grade") or ""
    grade_ok = minimum not in GRADES or (
        grade in GRADES and GRADES.index(grade) <= GRADES.index(minimum)
    )
    return total >= get(settings, "mql_threshold") and grade_ok and not gating_reason


def _capped_sum(rules: list[Any], points: dict[str, float]) -> float:
    """Sum per group, each group capped (from above) by its cap; ungrouped rules add as-is."""
    groups: dict[Any, list[float]] = {}
    caps: dict[Any, Any] = {}
    for rule in rules:
        group = get(rule, "group")
        key = ident(group) if group is not None else None
        groups.setdefault(key, []).append(points[f"r{ident(rule)}"])
        caps[key] = get(group, "cap")
    total = 0.0
    for key, values in groups.items():
        part = sum(values)
        if key is not None and caps[key] is not None:
            part = min(part, caps[key])
        total += part
    return total


def score(
    *, lead: Any, rules: Iterable[Any], gates: Iterable[Any], settings: Any, now: datetime
) -> LeadScore:
    """The scores of one lead under active rules and gates (inactive ones are ignored)."""
    rules = sorted((r for r in rules if get(r, "is_active", True)), key=ident)
    gates = sorted((g for g in gates if get(g, "is_active", True)), key=ident)
    activities = list(get(lead, "activities") or [])
    points: dict[str, float] = {}
    for rule in rules:
        if get(rule, "kind") == RuleKind.FIT:
            hit = condition_holds(
                lead, get(rule, "field"), get(rule, "operator"), get(rule, "value")
            )
            points[f"r{ident(rule)}"] = float(get(rule, "points")) if hit else 0.0
        else:
            points[f"r{ident(rule)}"] = engagement_points(rule, activities, settings, now)
    fit_raw = _capped_sum([r for r in rules if get(r, "kind") == RuleKind.FIT], points)
    eng_raw = _capped_sum([r for r in rules if get(r, "kind") == RuleKind.ENGAGEMENT], points)
    total_raw = fit_raw + eng_raw
    if get(settings, "total_ceiling"):
        total_raw = min(total_raw, get(settings, "total_ceiling"))
    reason = next(
        (
            get(g, "reason")[:200]
            for g in gates
            if condition_holds(lead, get(g, "field"), get(g, "operator"), get(g, "value"))
        ),
        "",
    )
    out = LeadScore(
        fit_raw=fit_raw,
        engagement_raw=eng_raw,
        total_raw=total_raw,
        breakdown_raw=points,
        gating_reason=reason,
        fit=half_up(fit_raw),
        engagement=half_up(eng_raw),
        total=half_up(total_raw),
        breakdown={name: half_up(x) for name, x in points.items()},
    )
    out.grade = grade_for(out.fit, settings)
    out.band = band_for(out.total, settings)
    out.mql = mql_for(out.total, out.grade, reason, settings)
    return out
