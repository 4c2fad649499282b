"""The queue row's times as the template filters print them, cheaper per row.

A row shows its last activity as `{{ at }}` (the page's DATETIME_FORMAT) and
`{{ at|timesince }}`. Through Django each costs a translation look-up or two
and a formatter object per row; here the words are translated once per page and
the common cases computed directly:

- `DateTimeFormat`: the specifiers of the usual formats (N j Y P, English's
  "N j, Y, P") from the page's translated month and a.m./p.m./noon/midnight
  words; a format with any other specifier goes to Django's dateformat.
- `TimeSince`: below four weeks no month or year enters timesince, so its
  weeks, days, hours and minutes (two adjacent units, as the filter's depth 2)
  are plain division; longer spans and future times go to Django's.

tests/pipeline/test_rowtime.py holds both to Django's output.
"""

from __future__ import annotations

import datetime as dt

from django.utils import dateformat
from django.utils.dates import MONTHS_AP
from django.utils.html import avoid_wrapping
from django.utils.timesince import TIME_STRINGS, timesince
from django.utils.timezone import is_aware
from django.utils.translation import get_language, gettext

FAST_SPECIFIERS = frozenset("NjYP")
UNITS = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60))
_PRINTERS: dict[tuple[str | None, str], tuple[DateTimeFormat, TimeSince]] = {}


def page_times(fmt) -> tuple[DateTimeFormat, TimeSince]:
    """The two printers for a page in the active language, made once per process
    and language (translations do not change while it runs)."""
    key = (get_language(), str(fmt))
    if key not in _PRINTERS:
        _PRINTERS[key] = (DateTimeFormat(fmt), TimeSince())
    return _PRINTERS[key]


class DateTimeFormat:
    """`dateformat.format(value, fmt)` for one page."""

    def __init__(self, fmt) -> None:
        self.fmt = str(fmt)
        pieces = dateformat.re_formatchars.split(self.fmt)
        self.plan: list[tuple[bool, str]] | None = []
        for i, piece in enumerate(pieces):
            if i % 2:
                if piece not in FAST_SPECIFIERS:
                    self.plan = None
                    break
                self.plan.append((True, piece))
            elif piece:
                self.plan.append((False, dateformat.re_escaped.sub(r"\1", piece)))
        self.months = {month: str(name) for month, name in MONTHS_AP.items()}
        self.am, self.pm = gettext("a.m."), gettext("p.m.")
        self.noon, self.midnight = gettext("noon"), gettext("midnight")

    def __call__(self, value: dt.datetime) -> str:
        if self.plan is None:
            return dateformat.format(value, self.fmt)
        return "".join(self._part(value, piece) if code else piece for code, piece in self.plan)

    def _part(self, value: dt.datetime, specifier: str) -> str:
        if specifier == "N":
            return self.months[value.month]
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


class TimeSince:
    """`timesince(value)` (the filter's default depth of 2) for one page."""

    def __init__(self, clock=dt.datetime.now) -> None:
        self.clock = clock  # (tzinfo) -> now, as timesince reads it
        self.strings = {unit: _Plural(text) for unit, text in TIME_STRINGS.items()}
        self.comma = gettext(", ")
        self.pieces: dict[tuple[str, int], str] = {}

    def __call__(self, value: dt.datetime) -> str:
        if not isinstance(value, dt.datetime) or not is_aware(value):
            return timesince(value, time_strings=self.strings)
        now = self.clock(value.tzinfo)
        delta = now - value
        since = delta.days * 86400 + delta.seconds
        if since <= 0 or delta.days >= 28:
            return timesince(value, now, time_strings=self.strings)
        parts: list[str] = []
        for unit, seconds in UNITS:
            count, since = divmod(since, seconds)
            if count:
                parts.append(self._piece(unit, count))
            if (parts and not count) or len(parts) == 2:
                break
        return self.comma.join(parts) if parts else self._piece("minute", 0)

    def _piece(self, unit: str, count: int) -> str:
        key = (unit, count)
        if key not in self.pieces:
            self.pieces[key] = avoid_wrapping(self.strings[unit] % {"num": count})
        return self.pieces[key]


class _Plural:
    """A lazy plural string whose translations are kept per count."""

    def __init__(self, text) -> None:
        self.text, self.done = text, {}

    def __mod__(self, values: dict) -> str:
        key = values["num"]
        if key not in self.done:
            self.done[key] = self.text % values
        return self.done[key]
