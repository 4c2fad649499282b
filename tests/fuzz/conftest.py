"""Fuzzers report how many cases they ran: each test counts into the
`fuzz_stats` fixture, which records the totals as user properties at teardown;
tests/conftest.py sums them (under xdist only the top conftest runs in the
controller, which receives the user properties with each report)."""

from collections import Counter

import pytest

KEYS = ("fuzz_cases", "fuzz_server_errors", "fuzz_partial_writes")


@pytest.fixture
def fuzz_stats(record_property):
    stats: Counter = Counter()
    yield stats
    for key in KEYS:
        record_property(key, stats[key])
