"""Number helpers for reports: rates and ratios that return None instead of
dividing by zero (templates and CSVs show "—"), percentiles, and display formats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

DASH = "—"


def rate(part, whole) -> float | None:
    """part / whole as a fraction, or None when there is nothing to divide by."""
    if not whole:
        return None
    return float(part or 0) / float(whole)


def ratio(numerator, denominator) -> float | None:
    """A money or time ratio (CPL, CPA…): None when the denominator is zero or unknown."""
    if denominator in (None, 0) or numerator is None:
        return None
    return float(numerator) / float(denominator)


def change(current, previous) -> float | None:
    """Relative change current vs previous (0.25 = +25 %); None without a base."""
    if current is None or not previous:
        return None
    return (float(current) - float(previous)) / float(previous)


def roi(revenue, cost) -> float | None:
    """(revenue − cost) / cost; None for free campaigns (no cost to return on)."""
    if not cost:
        return None
    return (float(revenue or 0) - float(cost)) / float(cost)


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0–100), linear interpolation between closest ranks
    (the same as PostgreSQL's percentile_cont and numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * p / 100
    low, high = math.floor(pos), math.ceil(pos)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 50)


# -- display ----------------------------------------------------------------------


def fmt_pct(value, digits: int = 1) -> str:
    if value is None:
        return DASH
    return f"{value * 100:.{digits}f}%"


def fmt_change(value) -> str:
    if value is None:
        return DASH
    return f"{value * 100:+.0f}%"


def fmt_money(value) -> str:
    if value is None:
        return DASH
    return f"{Decimal(str(value)):,.2f}"


def fmt_int(value) -> str:
    if value is None:
        return DASH
    return f"{int(value):,}"


def fmt_duration(seconds) -> str:
    """Seconds as the two largest units: "45s", "12m", "3h 5m", "2d 4h"."""
    if seconds is None:
        return DASH
    seconds = max(0, round(float(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


FORMATTERS = {
    "int": fmt_int,
    "pct": fmt_pct,
    "change": fmt_change,
    "money": fmt_money,
    "duration": fmt_duration,
    "ratio": lambda v: DASH if v is None else f"{v:.2f}",
    "text": lambda v: DASH if v in (None, "") else str(v),
}


def fmt(value, kind: str) -> str:
    return FORMATTERS.get(kind, FORMATTERS["text"])(value)


def csv_value(value, kind: str) -> str:
    """Machine-friendly cell for CSV: raw numbers, empty for unknown."""
    if value is None:
        return ""
    if kind == "pct" or kind == "change":
        return f"{value * 100:.2f}"
    if kind == "duration":
        return f"{float(value) / 60:.2f}"  # minutes
    if kind == "money":
        return f"{Decimal(str(value)):.2f}"
    if kind == "ratio":
        return f"{value:.4f}"
    return str(value)
