"""Rows of list pages with many rows, built in Python.

Through Django's template engine the rep queue's and the lead list's rows
(`{% url %}` per link, dozens of variables, filters and includes per row) cost
more than the pages' SQL (bench/rep_queue.py). Here:

- `IdUrl` reverses a URL pattern once per page and puts each row's id into it.
- `html` is `format_html` without its per-call overhead, with the same escaping:
  every value is escaped unless it is already safe HTML (`__html__`), so lead
  data is never marked safe.
- `show` prints a value the way `{{ value }}` does (local time, localized, escaped).
- `DateFormat` prints dates as the `date` filter does, its translations looked
  up once per process and language instead of once per row (`date_format`).
"""

from __future__ import annotations

from html import escape

from django.conf import settings
from django.template.base import render_value_in_context
from django.template.context import Context
from django.urls import reverse
from django.utils import dateformat
from django.utils.dates import MONTHS_3, MONTHS_AP
from django.utils.functional import Promise
from django.utils.safestring import SafeString
from django.utils.translation import get_language, gettext

# Reversed in place of the id, then cut out. Any string the int converter takes.
_SENTINEL = "9081726354"
# What `{{ value }}` needs of its context: autoescaping, localization, time zone.
_DISPLAY = Context(autoescape=True)


class IdUrl:
    """`reverse(viewname, kwargs={**kwargs, id_kwarg: pk})` for many pks, reversed once."""

    do_not_call_in_templates = True  # templates pass it to the `with_id` filter

    def __init__(self, viewname: str, id_kwarg: str, **kwargs) -> None:
        self.viewname, self.id_kwarg, self.kwargs = viewname, id_kwarg, kwargs
        url = reverse(viewname, kwargs={**kwargs, id_kwarg: _SENTINEL})
        # Another argument holding the sentinel would make the cut ambiguous: reverse per row.
        self.parts = url.split(_SENTINEL) if url.count(_SENTINEL) == 1 else None

    def __call__(self, pk: int) -> str:
        if self.parts is None:
            return reverse(self.viewname, kwargs={**self.kwargs, self.id_kwarg: pk})
        return f"{self.parts[0]}{int(pk)}{self.parts[1]}"


def escape_value(value) -> str:
    """django.utils.html.conditional_escape, minus its lazy-argument wrappers."""
    kind = type(value)
    if kind is str:  # exactly str: no subclass (SafeString) and so no __html__
        return escape(value)
    if kind is SafeString:  # markup that is already safe: its __html__ is itself
        return value
    if kind is int:  # digits and a minus sign: nothing to escape
        return str(value)
    if isinstance(value, Promise):
        value = str(value)
    if hasattr(value, "__html__"):
        return value.__html__()
    return escape(str(value))


def html(template: str, *args, **kwargs) -> SafeString:
    """`format_html`: the template is trusted markup; every value is escaped."""
    for key, value in kwargs.items():  # this call's own dict: escaped in place
        kwargs[key] = escape_value(value)
    return SafeString(template.format(*map(escape_value, args), **kwargs))


def show(value) -> SafeString:
    """`{{ value }}`: local time, localized, escaped."""
    if type(value) is int and not settings.USE_THOUSAND_SEPARATOR:
        return SafeString(value)  # what localize() makes of it, without its format look-ups
    return SafeString(render_value_in_context(value, _DISPLAY))


class DateFormat:
    """`dateformat.format(value, fmt)` (the `date` filter, `{{ value }}` with a
    format setting) for a page: the specifiers list pages use (N M j Y P) printed
    from month and a.m./p.m./noon/midnight words translated once; a format with
    any other specifier goes to Django's dateformat. Values are local times (the
    caller's template_localtime). `date_format` keeps one per format and language."""

    FAST = frozenset("NMjYP")

    def __init__(self, fmt) -> None:
        self.fmt = str(fmt)
        pieces = dateformat.re_formatchars.split(self.fmt)
        self.plan: list[tuple[bool, str]] | None = []
        for i, piece in enumerate(pieces):
            if i % 2:
                if piece not in self.FAST:
                    self.plan = None
                    break
                self.plan.append((True, piece))
            elif piece:
                self.plan.append((False, dateformat.re_escaped.sub(r"\1", piece)))
        self.months_ap = {month: str(name) for month, name in MONTHS_AP.items()}
        self.months_3 = {month: str(name).title() for month, name in MONTHS_3.items()}
        self.am, self.pm = gettext("a.m."), gettext("p.m.")
        self.noon, self.midnight = gettext("noon"), gettext("midnight")

    def __call__(self, value) -> str:
        if self.plan is None:
            return dateformat.format(value, self.fmt)
        return "".join(self._part(value, piece) if code else piece for code, piece in self.plan)

    def _part(self, value, specifier: str) -> str:
        if specifier == "N":
            return self.months_ap[value.month]
        if specifier == "M":
            return self.months_3[value.month]
        if specifier == "j":
            return str(value.day)
        if specifier == "Y":
            return f"{value.year:04d}"
        # P: "1 a.m.", "1:30 p.m.", "midnight", "noon".
        hour, minute = value.hour, value.minute
        if minute == 0 and hour in (0, 12):
            return self.midnight if hour == 0 else self.noon
        twelve = hour % 12 or 12
        clock = f"{twelve}:{minute:02d}" if minute else str(twelve)
        return f"{clock} {self.pm if hour > 11 else self.am}"


_DATE_FORMATS: dict[tuple[str | None, str], DateFormat] = {}


def date_format(fmt) -> DateFormat:
    """The DateFormat of `fmt` in the active language, made once per process
    (translations do not change while it runs)."""
    key = (get_language(), str(fmt))
    if key not in _DATE_FORMATS:
        _DATE_FORMATS[key] = DateFormat(fmt)
    return _DATE_FORMATS[key]
