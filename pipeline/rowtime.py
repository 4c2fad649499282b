"""The queue row's times as the template filters print them, cheaper per row.

A row shows its last activity as `{{ at }}` (the page's DATETIME_FORMAT) and
`{{ at|timesince }}`. Through Django each costs a translation look-up or two
and a formatter object per row; here the words are translated once per page and
the common cases computed directly:

- the date: leadflow.core.rowhtml's `DateFormat` (shared with the lead list);
- `TimeSince`: below four weeks no month or year enters timesince, so its
  weeks, days, hours and minutes (two adjacent units, as the filter's depth 2)
  are plain division; longer spans and future times go to Django's.

tests/pipeline/test_rowtime.py holds both to Django's output.
"""

from __future__ import annotations

import datetime as dt

from django.utils.html import avoid_wrapping
from django.utils.timesince import TIME_STRINGS, timesince
from django.utils.timezone import is_aware
from django.utils.translation import get_language, gettext

from leadflow.core.rowhtml import DateFormat, date_format

UNITS = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60))
_SINCE: dict[str | None, TimeSince] = {}


def page_times(fmt) -> tuple[DateFormat, TimeSince]:
    """The two printers for a page in the active language, made once per process
    and language (translations do not change while it runs)."""
    language = get_language()
    if language not in _SINCE:
        _SINCE[language] = TimeSince()
    return date_format(fmt), _SINCE[language]


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
