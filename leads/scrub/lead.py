"""``scrub_lead``: normalise and grade one captured lead."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .countries import normalize_country
from .data import FAKE_COMPANY_VALUES
from .emails import EmailCheck, normalize_email
from .names import check_full_name, check_person_name, clean_and_recase
from .phones import PhoneCheck, normalize_phone
from .reasons import Quality, Reason, ReasonCode, worst_quality
from .text import as_text, clean_text, shorten

__all__ = ["FIELD_MAX_LENGTH", "ScrubResult", "scrub_lead"]

#: Longer values are kept but flagged ``value_too_long`` (the caller decides
#: whether to truncate, reject or store in a wider column).
FIELD_MAX_LENGTH: dict[str, int] = {
    "first_name": 150,
    "last_name": 150,
    "company_name": 255,
    "title": 255,
    "city": 150,
    "phone": 64,
}


@dataclass(frozen=True, slots=True)
class ScrubResult:
    """Outcome of :func:`scrub_lead`.

    ``cleaned`` holds every input key: the scrubbed fields normalised, all
    other keys untouched. ``corrections`` maps a field to its original input
    whenever the cleaned value differs from it beyond trimming/whitespace
    (email lower-cased or typo-fixed, phone put in E.164, country coded, name
    re-cased). ``suggestions`` maps a field to a suggested value that was *not*
    applied (e.g. ``{"email": "ann@gmail.com"}`` for ``ann@gmail.con``).
    """

    cleaned: dict[str, Any]
    quality: str
    reasons: list[Reason] = field(default_factory=list)
    corrections: dict[str, Any] = field(default_factory=dict)
    company_domain: str | None = None
    is_free_mail: bool = False
    suggestions: dict[str, str] = field(default_factory=dict)
    email_check: EmailCheck | None = None
    phone_check: PhoneCheck | None = None

    @property
    def codes(self) -> set[str]:
        """The set of reason codes (handy for filtering and tests)."""
        return {str(r.code) for r in self.reasons}

    def reasons_as_dicts(self) -> list[dict[str, Any]]:
        """Reasons in plain-JSON form, for a JSONField."""
        return [r.as_dict() for r in self.reasons]


def _too_long(name: str, value: str, reasons: list[Reason]) -> None:
    limit = FIELD_MAX_LENGTH.get(name)
    if limit is not None and len(value) > limit:
        reasons.append(
            Reason(
                ReasonCode.VALUE_TOO_LONG,
                name,
                f"{name} is {len(value)} characters long (max {limit})",
            )
        )


def _resolve_region(country: str | None, default_region: str | None) -> str | None:
    if country:
        return country
    if not default_region:
        return None
    if len(default_region.strip()) == 2:
        return default_region.strip().upper()
    return normalize_country(default_region)


def scrub_lead(data: Mapping[str, Any], *, default_region: str | None = None) -> ScrubResult:
    """Normalise one lead and grade it ``ok`` / ``suspect`` / ``junk``.

    Known keys: ``email``, ``first_name``, ``last_name``, ``phone``,
    ``country``, ``city``, ``company_name``, ``title``; anything else is passed
    through untouched. Phone numbers are read in the lead's country, else in
    ``default_region``, else must be international. Never raises on any
    mapping of plain values.
    """
    cleaned: dict[str, Any] = dict(data)
    reasons: list[Reason] = []
    corrections: dict[str, Any] = {}
    suggestions: dict[str, str] = {}

    # --- email (always checked: a missing email is junk) -------------------
    raw_email = data.get("email")
    email = normalize_email(raw_email)
    reasons.extend(email.reasons)
    if "email" in data:
        if email.email is not None:
            cleaned["email"] = email.email
            if email.original is not None and email.email != email.original.strip():
                corrections["email"] = raw_email
        else:
            cleaned["email"] = None if email.original is None else ""
    if email.suggestion is not None:
        suggestions["email"] = email.suggestion

    # --- person names --------------------------------------------------------
    names: dict[str, str] = {}
    for key in ("first_name", "last_name"):
        if key not in data:
            continue
        raw = data[key]
        text = as_text(raw)
        if text is None:
            cleaned[key] = None
            continue
        trimmed, value = clean_and_recase(text)
        cleaned[key] = value
        names[key] = value
        if value != trimmed:
            corrections[key] = raw
        _too_long(key, value, reasons)
        reasons.extend(check_person_name(value, key))
    if names:
        reasons.extend(check_full_name(names.get("first_name", ""), names.get("last_name", "")))

    # --- country -------------------------------------------------------------
    country: str | None = None
    if "country" in data:
        raw = data["country"]
        text = as_text(raw)
        trimmed = clean_text(text) if text else ""
        country = normalize_country(trimmed) if trimmed else None
        cleaned["country"] = country
        if trimmed and country is None:
            corrections["country"] = raw
            reasons.append(
                Reason(
                    ReasonCode.COUNTRY_UNKNOWN,
                    "country",
                    f"Unknown country {shorten(trimmed)!r}",
                )
            )
        elif country is not None and country != trimmed:
            corrections["country"] = raw

    # --- phone ---------------------------------------------------------------
    phone: PhoneCheck | None = None
    if "phone" in data:
        raw = data["phone"]
        phone = normalize_phone(raw, _resolve_region(country, default_region))
        cleaned["phone"] = phone.value
        reasons.extend(phone.reasons)
        if phone.original:
            _too_long("phone", phone.original, reasons)
            if phone.valid and phone.e164 != phone.original:
                corrections["phone"] = raw

    # --- free text -------------------------------------------------------------
    for key in ("city", "company_name", "title"):
        if key not in data:
            continue
        raw = data[key]
        text = as_text(raw)
        if text is None:
            cleaned[key] = None
            continue
        if key == "city":
            trimmed, value = clean_and_recase(text)
        else:
            trimmed = value = clean_text(text)
        cleaned[key] = value
        if value != trimmed:
            corrections[key] = raw
        _too_long(key, value, reasons)
        if key == "company_name" and value.casefold() in FAKE_COMPANY_VALUES:
            reasons.append(
                Reason(
                    ReasonCode.FAKE_COMPANY,
                    key,
                    f"Company {shorten(value)!r} is a placeholder",
                )
            )

    return ScrubResult(
        cleaned=cleaned,
        quality=str(worst_quality(reasons)) if reasons else str(Quality.OK),
        reasons=reasons,
        corrections=corrections,
        company_domain=email.company_domain,
        is_free_mail=email.is_free_mail,
        suggestions=suggestions,
        email_check=email,
        phone_check=phone,
    )
