"""The queue row's cheaper time printing says exactly what Django's `{{ at }}`
and `{{ at|timesince }}` say, in English and in another language."""

import datetime as dt
import random

import pytest
from django.utils import dateformat, translation
from django.utils.timesince import timesince

from leadflow.core.rowhtml import DateFormat
from pipeline.rowtime import TimeSince, page_times

FORMATS = ["N j, Y, P", r"j N Y \a\t P", "Y-m-d H:i", "D, j M Y", "P", r"\N\j N", "M j, Y"]
NOW = dt.datetime(2026, 3, 1, 9, 30, 15, 250000, tzinfo=dt.UTC)


def _times(n: int = 400) -> list[dt.datetime]:
    pick = random.Random(15)
    times = [
        dt.datetime(2026, month, day, hour, minute, tzinfo=dt.UTC)
        for month, day in ((1, 1), (2, 28), (6, 15), (12, 31))
        for hour in range(24)
        for minute in (0, 1, 30, 59)
    ]
    times += [NOW - dt.timedelta(seconds=pick.randrange(0, 90 * 86400)) for _ in range(n)]
    return times


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_datetime_format_prints_what_dateformat_prints(fmt, language):
    with translation.override(language):
        ours = DateFormat(fmt)
        for value in _times(100):
            assert ours(value) == dateformat.format(value, fmt), value


@pytest.mark.parametrize("language", ["en", "de"])
def test_time_since_says_what_timesince_says(language):
    spans = [dt.timedelta(seconds=s) for s in (0, 1, 59, 60, 61, 3599, 3600, 3660, 86399)]
    spans += [dt.timedelta(days=d, seconds=s) for d in (1, 6, 7, 13, 14, 27, 28, 29, 60, 400)
              for s in (0, 59, 3600, 7261)]  # fmt: skip
    spans += [-dt.timedelta(minutes=5)]  # in the future
    values = [NOW - span for span in spans] + _times()
    with translation.override(language):
        ours = TimeSince(clock=NOW.astimezone)
        for value in values:
            assert ours(value) == timesince(value, NOW), (value, NOW - value)


def test_each_language_has_its_own_printers():
    with translation.override("de"):
        german, _since = page_times("N j, Y, P")
        assert german(NOW.replace(hour=12, minute=0)) == dateformat.format(
            NOW.replace(hour=12, minute=0), "N j, Y, P"
        )
    with translation.override("en"):
        english, _since = page_times("N j, Y, P")
        assert english(NOW.replace(hour=12, minute=0)) == "March 1, 2026, noon"
    assert english is not german and page_times("N j, Y, P")[0] is page_times("N j, Y, P")[0]
