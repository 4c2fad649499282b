"""Reason codes, their severities, and the :class:`Reason` record.

Every finding of the scrubber is a :class:`Reason` with a *stable* machine
``code`` (safe to store, filter and count on), the ``field`` it concerns and a
human ``message``. The overall lead quality is the worst severity among its
reasons (no reasons at all means ``"ok"``).

Severity table (the single source of truth, see :data:`SEVERITY`)
==================================================================

======================  ========  ===============================================
code                    severity  meaning
======================  ========  ===============================================
email_missing           junk      no email given (absent, None or blank)
email_invalid           junk      email fails syntax validation
email_disposable        junk      throw-away domain (mailinator.com, ...)
email_fake              junk      placeholder address: test@..., @example.com,
                                  @test.com, @domain.com, ...
name_has_url            junk      a URL in a name field (link spam)
email_role              suspect   role mailbox (info@, sales@, noreply@, ...)
email_typo_suggested    suspect   domain looks like a typo; suggestion only
keyboard_mash           suspect   "asdfgh", "qwertyuiop", "jkjkjk", "xxxxx", ...
fake_name               suspect   "John Doe", "Mickey Mouse", "Test", "asdf", ...
name_equals_last        suspect   first name == last name ("Anna Anna"); only
                                  suspect because mononymous people often
                                  repeat their one name in both fields
name_has_digits         suspect   digits in a person's name
name_has_markup         suspect   HTML-ish tags in a name (kept verbatim)
fake_company            suspect   placeholder company ("test", "n/a", ...)
phone_invalid           suspect   phone unparsable/invalid, or no country code
                                  and no region to interpret it in
country_unknown         suspect   country given but not mappable to ISO 3166
value_too_long          suspect   value longer than the field allows (kept,
                                  not truncated: the caller decides)
email_typo_corrected    ok        unambiguous domain typo fixed (gmial.com ->
                                  gmail.com); the original is in corrections
======================  ========  ===============================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "QUALITIES",
    "SEVERITY",
    "Quality",
    "Reason",
    "ReasonCode",
    "worst_quality",
]


class Quality(StrEnum):
    """Overall verdict for a lead, ordered ``ok`` < ``suspect`` < ``junk``."""

    OK = "ok"
    SUSPECT = "suspect"
    JUNK = "junk"


QUALITIES: tuple[str, ...] = (Quality.OK, Quality.SUSPECT, Quality.JUNK)
_RANK = {Quality.OK: 0, Quality.SUSPECT: 1, Quality.JUNK: 2}


class ReasonCode(StrEnum):
    """Stable machine codes. Never rename a value: they are stored as JSON."""

    EMAIL_MISSING = "email_missing"
    EMAIL_INVALID = "email_invalid"
    EMAIL_DISPOSABLE = "email_disposable"
    EMAIL_FAKE = "email_fake"
    EMAIL_ROLE = "email_role"
    EMAIL_TYPO_CORRECTED = "email_typo_corrected"
    EMAIL_TYPO_SUGGESTED = "email_typo_suggested"
    KEYBOARD_MASH = "keyboard_mash"
    FAKE_NAME = "fake_name"
    NAME_EQUALS_LAST = "name_equals_last"
    NAME_HAS_DIGITS = "name_has_digits"
    NAME_HAS_URL = "name_has_url"
    NAME_HAS_MARKUP = "name_has_markup"
    FAKE_COMPANY = "fake_company"
    PHONE_INVALID = "phone_invalid"
    COUNTRY_UNKNOWN = "country_unknown"
    VALUE_TOO_LONG = "value_too_long"


# The severity table. Keep it in sync with the module docstring above.
SEVERITY: dict[ReasonCode, Quality] = {
    ReasonCode.EMAIL_MISSING: Quality.JUNK,
    ReasonCode.EMAIL_INVALID: Quality.JUNK,
    ReasonCode.EMAIL_DISPOSABLE: Quality.JUNK,
    ReasonCode.EMAIL_FAKE: Quality.JUNK,
    ReasonCode.NAME_HAS_URL: Quality.JUNK,
    ReasonCode.EMAIL_ROLE: Quality.SUSPECT,
    ReasonCode.EMAIL_TYPO_SUGGESTED: Quality.SUSPECT,
    ReasonCode.KEYBOARD_MASH: Quality.SUSPECT,
    ReasonCode.FAKE_NAME: Quality.SUSPECT,
    ReasonCode.NAME_EQUALS_LAST: Quality.SUSPECT,
    ReasonCode.NAME_HAS_DIGITS: Quality.SUSPECT,
    ReasonCode.NAME_HAS_MARKUP: Quality.SUSPECT,
    ReasonCode.FAKE_COMPANY: Quality.SUSPECT,
    ReasonCode.PHONE_INVALID: Quality.SUSPECT,
    ReasonCode.COUNTRY_UNKNOWN: Quality.SUSPECT,
    ReasonCode.VALUE_TOO_LONG: Quality.SUSPECT,
    ReasonCode.EMAIL_TYPO_CORRECTED: Quality.OK,
}


@dataclass(frozen=True, slots=True)
class Reason:
    """One finding about one field of a lead."""

    code: ReasonCode
    field: str
    message: str

    @property
    def severity(self) -> Quality:
        return SEVERITY[self.code]

    def as_dict(self) -> dict[str, Any]:
        """Plain-JSON form (all values are ``str``)."""
        return {
            "code": str(self.code),
            "field": self.field,
            "message": self.message,
            "severity": str(self.severity),
        }


def worst_quality(reasons: Any) -> Quality:
    """The worst severity among ``reasons`` (``ok`` for none)."""
    worst = Quality.OK
    for reason in reasons:
        sev = SEVERITY[reason.code]
        if _RANK[sev] > _RANK[worst]:
            worst = sev
            if worst is Quality.JUNK:
                break
    return worst
