"""Fuzzers report how many cases they ran: each test counts into the
`fuzz_stats` fixture, which records the totals as user properties at teardown;
they are summed here (also across xdist processes, which ship user properties
to the controller with each report)."""

from collections import Counter

import pytest

FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """The fuzzers make many members; their (unused) passwords need no real hashing."""
    settings.PASSWORD_HASHERS = FAST_HASHER


KEYS = ("fuzz_cases", "fuzz_server_errors", "fuzz_partial_writes")


@pytest.fixture
def fuzz_stats(record_property):
    stats: Counter = Counter()
    yield stats
    for key in KEYS:
        record_property(key, stats[key])


def pytest_terminal_summary(terminalreporter):
    totals: Counter = Counter()
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "teardown":
                continue
            for name, value in getattr(report, "user_properties", ()):
                if name.startswith("fuzz_"):
                    totals[name] += value
    if totals:
        terminalreporter.write_line(
            f"fuzzing: {totals['fuzz_cases']} cases run, "
            f"{totals['fuzz_server_errors']} server errors, "
            f"{totals['fuzz_partial_writes']} partial writes"
        )
