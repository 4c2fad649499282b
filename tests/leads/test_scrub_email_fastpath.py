"""The ASCII fast path in ``leads.scrub.emails`` must agree with email-validator.

The fast path only exists for speed; it may reject (defer) anything, but what
it accepts, email-validator must accept with the identical normalised form.
"""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.scrub import emails

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?"
_ADDRESS = st.from_regex(
    rf"[a-z0-9_!#$%&'*+/=?^`{{|}}~-]{{1,12}}(?:\.[a-z0-9_!#$%&'*+/=?^`{{|}}~-]{{1,8}}){{0,2}}"
    rf"@(?:{_LABEL}\.){{1,3}}[a-z]{{2,8}}",
    fullmatch=True,
)


def _reference(address: str) -> tuple[str, str, str] | None:
    try:
        info = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return None
    return info.local_part.lower(), info.domain.lower(), (info.ascii_domain or "").lower()


@settings(max_examples=500, deadline=None)
@given(address=_ADDRESS)
def test_fast_path_accepts_only_what_email_validator_accepts(address):
    if emails._fast_path_ok(address):
        assert _reference(address) == emails._validate.__wrapped__(address)


@settings(max_examples=500, deadline=None)
@given(address=st.one_of(st.text(max_size=80), _ADDRESS.map(str.upper), _ADDRESS))
def test_validate_matches_email_validator(address):
    address = address.lower()
    ours = emails._validate.__wrapped__(address)
    ref = _reference(address)
    if ref is None:
        assert isinstance(ours, str)
    else:
        assert ours == ref


@pytest.mark.parametrize(
    "address",
    [
        "ann@acme.com",
        "o'brien+tag@mail.acme.co.uk",
        "a@b.io",
        "x-y_z@a-b.museum",
    ],
)
def test_common_addresses_take_fast_path(address):
    assert emails._fast_path_ok(address)


@pytest.mark.parametrize(
    "address",
    [
        "ann@xn--mller-kva.de",  # IDNA label: needs real validation
        "ann@ab--cd.com",
        "ann@b.test",  # special-use TLD
        "ann@b.c",  # one-letter TLD: left to email-validator
        "josé@acme.com",
        "ann@acme.123",
        "a" * 250 + "@acme.com",
    ],
)
def test_unusual_addresses_are_deferred(address):
    assert not emails._fast_path_ok(address)
