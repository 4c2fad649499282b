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
  up once per page instead of once per row.
"""

from __future__ import annotations

from html import escape

from django.conf import settings
from django.template.base import render_value_in_context
from django.template.context import Context
from django.urls import reverse
from django.utils import dateformat, formats, timezone
from django.utils.dates import MONTHS_3, MONTHS_AP
from django.utils.functional import Promise
from django.utils.safestring import SafeString
from django.utils.translation import gettext

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
    """`{{ value|date:format }}` of aware datetimes in the current time zone, the
    format compiled once: its month names and a.m./p.m. translated once.

    Compiles the format characters the list pages use (N M j Y P and literal
    punctuation); any other format is left to Django's `dateformat`. `named`:
    a format setting's name, such as "DATETIME_FORMAT" (what `{{ value }}` shows).
    """

    _LITERAL = frozenset(" ,.-/:")

    def __init__(self, format_string: str, *, named: bool = False) -> None:
        self.format = formats.get_format(format_string) if named else format_string
        self.zone = timezone.get_current_timezone()
        self.months_ap = {m: str(name) for m, name in MONTHS_AP.items()}
        self.months_3 = {m: str(name).title() for m, name in MONTHS_3.items()}
        self.midnight, self.noon = gettext("midnight"), gettext("noon")
        self.am, self.pm = gettext("a.m."), gettext("p.m.")
        self.parts = self._compile(self.format)

    def _compile(self, format_string: str) -> list | None:
        parts: list = []
        for char in format_string:
            if char in self._LITERAL:
                parts.append(char)
            elif hasattr(self, f"_{char}"):
                parts.append(getattr(self, f"_{char}"))
            else:  # a character Django formats that this class does not: Django does it all
                return None
        return parts

    def __call__(self, value) -> str:
        local = value.astimezone(self.zone)
        if self.parts is None:
            return dateformat.format(local, self.format)
        return "".join(p if type(p) is str else p(local) for p in self.parts)

    def _N(self, value) -> str:  # Django's format characters: N M j Y P
        return self.months_ap[value.month]

    def _M(self, value) -> str:
        return self.months_3[value.month]

    def _j(self, value) -> str:
        return str(value.day)

    def _Y(self, value) -> str:
        return f"{value.year:04d}"

    def _P(self, value) -> str:
        hour, minute = value.hour, value.minute
        if minute == 0 and hour in (0, 12):
            return self.midnight if hour == 0 else self.noon
        clock = f"{hour % 12 or 12}:{minute:02d}" if minute else str(hour % 12 or 12)
        return f"{clock} {self.pm if hour > 11 else self.am}"
