"""Template filters of the report pages: every number goes through these, so an
undefined rate shows "—" everywhere."""

from django import template

from reports import formatting

register = template.Library()


@register.filter
def cell(row: dict, column) -> str:
    return formatting.fmt(row.get(column.key), column.kind)


@register.filter
def pct(value) -> str:
    return formatting.fmt_pct(value)


@register.filter
def delta(value) -> str:
    return formatting.fmt_change(value)


@register.filter
def duration(value) -> str:
    return formatting.fmt_duration(value)


@register.filter
def money(value) -> str:
    return formatting.fmt_money(value)


@register.filter
def num(value) -> str:
    return formatting.fmt_int(value)


@register.filter
def fmt(value, kind: str) -> str:
    return formatting.fmt(value, kind)


@register.filter
def trend_class(value, good_when: str = "up") -> str:
    """Bootstrap text colour of a change: green when it moves the good way."""
    if value is None or abs(value) < 0.005:
        return "text-secondary"
    up = value > 0
    return "text-success" if up == (good_when == "up") else "text-danger"


@register.filter
def trend_icon(value) -> str:
    if value is None or abs(value) < 0.005:
        return "bi-dash"
    return "bi-arrow-up-right" if value > 0 else "bi-arrow-down-right"


@register.filter
def points(value) -> str:
    """A change of a rate, in percentage points."""
    if value is None:
        return formatting.DASH
    return f"{value * 100:+.1f} pts"
