"""Phone normalisation to E.164 with *phonenumbers*.

The region used to read a national number is chosen by the caller (the lead's
country, else a default); without one the number must start with ``+`` (or
the international ``00`` prefix). Invalid numbers are reported, never raised,
and the original text is always kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from .reasons import Reason, ReasonCode
from .text import as_text, clean_text, shorten

__all__ = ["PhoneCheck", "normalize_phone"]

_SUPPORTED_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)
_COUNTRY_CODE = {r: phonenumbers.country_code_for_region(r) for r in _SUPPORTED_REGIONS}
_MAX_INPUT = 250  # phonenumbers' own limit; longer input is rejected early

_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown or missing country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}


@dataclass(frozen=True, slots=True)
class PhoneCheck:
    """Outcome of :func:`normalize_phone`.

    ``e164`` is set only for valid numbers. ``original`` is the trimmed input,
    ``region`` the region the input was read in (``None`` = international
    format required), ``number_region`` the region the number belongs to.
    """

    original: str | None
    e164: str | None = None
    valid: bool = False
    region: str | None = None
    number_region: str | None = None
    extension: str | None = None
    error: str | None = None
    reasons: tuple[Reason, ...] = ()

    @property
    def missing(self) -> bool:
        return not self.original

    @property
    def value(self) -> str | None:
        """What to store: E.164 when valid, otherwise the original text."""
        return self.e164 if self.valid else self.original


def _region(region: str | None) -> str | None:
    if not region:
        return None
    region = region.strip().upper()
    if region == "UK":
        region = "GB"
    return region if region in _SUPPORTED_REGIONS else None


def _invalid(original: str, region: str | None, error: str) -> PhoneCheck:
    return PhoneCheck(
        original=original,
        region=region,
        error=error,
        reasons=(
            Reason(
                ReasonCode.PHONE_INVALID,
                "phone",
                f"Invalid phone number {shorten(original)!r}: {error}",
            ),
        ),
    )


@lru_cache(maxsize=4096)
def _parse(text: str, region: str | None) -> PhoneCheck:
    candidate = text
    if region is None:
        if candidate.startswith("00"):
            candidate = "+" + candidate[2:]
        if not candidate.lstrip("(").startswith("+"):
            return _invalid(text, None, "no country code (start with +) and no country to assume")
    try:
        number = phonenumbers.parse(candidate, region)
    except NumberParseException as exc:
        return _invalid(text, region, _PARSE_ERRORS.get(exc.error_type, "unparsable"))
    # is_valid_number(n) is is_valid_number_for_region(n, region_code_for_number(n)),
    # and region_code_for_number() is costly for shared country codes (+1 has 25
    # regions). Most leads dial within the region we read them in, so try that
    # region first and only fall back to the full lookup.
    if (
        region is not None
        and number.country_code == _COUNTRY_CODE.get(region)
        and phonenumbers.is_valid_number_for_region(number, region)
    ):
        number_region: str | None = region
    else:
        number_region = phonenumbers.region_code_for_number(number)
        if number_region is None or not phonenumbers.is_valid_number_for_region(
            number, number_region
        ):
            where = number_region or region
            return _invalid(text, region, f"not a valid number{f' for {where}' if where else ''}")
    return PhoneCheck(
        original=text,
        e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        valid=True,
        region=region,
        number_region=number_region,
        extension=number.extension or None,
    )


def normalize_phone(raw: Any, region: str | None = None) -> PhoneCheck:
    """Parse ``raw`` into E.164, reading national numbers in ``region``.

    ``region`` is an ISO alpha-2 code ("US", "gb"); unsupported or empty means
    "no region": the number must then be international (``+``/``00``).
    Never raises; missing input gives ``PhoneCheck(original=None)`` with no
    reasons (a phone is optional).
    """
    text = as_text(raw)
    if text is None:
        return PhoneCheck(original=None)
    text = clean_text(text)
    if not text:
        return PhoneCheck(original="")
    if len(text) > _MAX_INPUT:  # checked before the (memoising) parser
        return _invalid(text, _region(region), "too long")
    return _parse(text, _region(region))
