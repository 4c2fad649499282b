"""Email normalisation and classification.

``normalize_email`` trims and lower-cases the address, validates its syntax
with *email-validator* (never touching DNS: ``check_deliverability=False``),
fixes unambiguous domain typos, suggests fixes for likely ones and classifies
the address (disposable, placeholder, role account, free-mail).

Speed: a CSV import runs ~10k rows/s through the scrubber, and a full
email-validator call costs tens of µs. Plain ASCII addresses of the overwhelmingly
common shape (dot-atom local part, LDH domain labels, alphabetic TLD, no
``--`` anywhere, no special-use TLD, <= 254 characters) are accepted by a
pre-compiled regex that only matches a *subset* of what email-validator accepts
(``tests/leads/test_scrub_email_fastpath.py`` checks this agreement with
hypothesis). Everything else -- IDN, quoting, odd lengths, anything the regex
does not match -- goes through email-validator itself. Results are memoised.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES, validate_email
from rapidfuzz import process
from rapidfuzz.distance import OSA

from .data import (
    DISPOSABLE_DOMAINS,
    DOMAIN_TYPOS,
    FAKE_EMAIL_DOMAINS,
    FAKE_EMAIL_TLDS,
    FAKE_LOCAL_PARTS,
    FREE_MAIL_DOMAINS,
    FREE_MAIL_FAMILIES,
    FUZZY_TYPO_TARGETS,
    NOT_TYPOS,
    ROLE_LOCAL_PARTS,
    TLD_TYPOS,
)
from .names import is_keyboard_mash
from .reasons import Reason, ReasonCode
from .text import as_text, shorten

__all__ = [
    "EMAIL_MAX_LENGTH",
    "EmailCheck",
    "email_domain",
    "is_disposable_domain",
    "is_free_mail",
    "normalize_email",
]

EMAIL_MAX_LENGTH = 254

_ATEXT = r"a-z0-9_!#$%&'*+/=?^`{|}~-"
#: Lower-case ASCII addresses that email-validator is known to accept as-is.
FAST_EMAIL_RE = re.compile(
    rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+[a-z]{{2,63}}"
)
_SPECIAL_USE_TLDS = frozenset(SPECIAL_USE_DOMAIN_NAMES)
_PUBLIC_SUFFIX_LIKE = re.compile(r"[a-z]{2,3}(?:\.[a-z]{2,3})?")
_FAKE_LOCAL_WITH_DIGITS = frozenset({"test", "testing", "tester", "fake", "dummy", "sample"})
_DIGITS = "0123456789"
_LETTER_RUN_RE = re.compile(r"[^\W\d_]+")
_FUZZY_TARGET_SET = frozenset(FUZZY_TYPO_TARGETS)
_CACHE_MAX_INPUT = 320


@dataclass(frozen=True, slots=True)
class EmailCheck:
    """Outcome of :func:`normalize_email`.

    ``email`` is the normalised (trimmed, lower-cased, typo-corrected) address
    when ``valid``; for an invalid address it is the trimmed, lower-cased input
    (so nothing the lead typed is lost); ``None`` when missing. ``original`` is
    the input as given. ``domain`` is the effective (corrected) domain in its
    Unicode form, ``ascii_domain`` its IDNA (punycode) form.
    """

    original: str | None
    email: str | None
    valid: bool = False
    local_part: str | None = None
    domain: str | None = None
    ascii_domain: str | None = None
    is_free_mail: bool = False
    is_disposable: bool = False
    is_role: bool = False
    is_fake: bool = False
    typo_corrected: bool = False
    suggestion: str | None = None
    error: str | None = None
    reasons: tuple[Reason, ...] = ()

    @property
    def missing(self) -> bool:
        return self.email is None

    @property
    def company_domain(self) -> str | None:
        """Domain usable to link a company, or ``None`` for free-mail,
        disposable, placeholder, or possibly mistyped domains."""
        if (
            not self.valid
            or self.domain is None
            or self.is_free_mail
            or self.is_disposable
            or self.is_fake
            or self.suggestion is not None
        ):
            return None
        return self.domain[4:] if self.domain.startswith("www.") else self.domain


# --------------------------------------------------------------------------
# Domain classification
# --------------------------------------------------------------------------


def _clean_domain(domain: str) -> str:
    domain = domain.strip().lower()
    if "@" in domain:
        domain = domain.rpartition("@")[2]
    return domain.rstrip(".")


def _in_suffix_set(domain: str, domains: frozenset[str]) -> bool:
    """``domain`` or one of its parent domains (not a bare TLD) is listed."""
    if domain in domains:
        return True
    dot = domain.find(".")
    while dot != -1:
        parent = domain[dot + 1 :]
        if "." not in parent:
            return False
        if parent in domains:
            return True
        dot = domain.find(".", dot + 1)
    return False


def is_free_mail(domain: str | None) -> bool:
    """True for consumer mailbox providers (gmail.com, yahoo.*, gmx.*, ...).

    Accepts a bare domain or a whole address. A free-mail domain says nothing
    about the lead's employer, so callers must not link a company by it.
    """
    if not domain:
        return False
    domain = _clean_domain(domain)
    if domain in FREE_MAIL_DOMAINS:
        return True
    first, _, rest = domain.partition(".")
    return first in FREE_MAIL_FAMILIES and _PUBLIC_SUFFIX_LIKE.fullmatch(rest) is not None


def is_disposable_domain(domain: str | None) -> bool:
    """True for throw-away mailbox domains (and their sub-domains)."""
    if not domain:
        return False
    return _in_suffix_set(_clean_domain(domain), DISPOSABLE_DOMAINS)


def _is_fake_domain(domain: str) -> bool:
    if _in_suffix_set(domain, FAKE_EMAIL_DOMAINS):
        return True
    first, _, rest = domain.partition(".")
    if domain.rpartition(".")[2] in FAKE_EMAIL_TLDS:
        return True
    return first == "example" and _PUBLIC_SUFFIX_LIKE.fullmatch(rest) is not None


@lru_cache(maxsize=8192)
def _suggest_domain(domain: str) -> str | None:
    """A *suggested* fix for a domain that looks mistyped, else ``None``."""
    if domain in FREE_MAIL_DOMAINS or domain in NOT_TYPOS or domain in _FUZZY_TARGET_SET:
        return None
    base, _, tld = domain.rpartition(".")
    if base and tld in TLD_TYPOS:
        return f"{base}.{TLD_TYPOS[tld]}"
    if len(domain) < 7 or not domain.isascii():
        return None
    # Optimal-string-alignment distance: a transposition ("gmial") counts as 1.
    match = process.extractOne(domain, FUZZY_TYPO_TARGETS, scorer=OSA.distance, score_cutoff=1)
    return match[0] if match is not None and match[1] == 1 else None


# --------------------------------------------------------------------------
# Local-part classification
# --------------------------------------------------------------------------


def _is_role(base: str) -> bool:
    if base in ROLE_LOCAL_PARTS:
        return True
    stripped = base.rstrip(_DIGITS)
    if stripped != base and stripped in ROLE_LOCAL_PARTS:
        return True
    # "sales-uk", "info.de", "support_us"
    return (
        len(base) > 4
        and base[-3] in "._-"
        and base[-2:].isalpha()
        and base[:-3] in ROLE_LOCAL_PARTS
    )


def _is_fake_local(base: str) -> bool:
    if base in FAKE_LOCAL_PARTS:
        return True
    stripped = base.rstrip(_DIGITS)
    return stripped != base and stripped in _FAKE_LOCAL_WITH_DIGITS


@lru_cache(maxsize=8192)
def _domain_facts(ascii_domain: str) -> tuple[bool, bool, bool]:
    """(fake, disposable, free-mail) for a validated ASCII domain."""
    return (
        _is_fake_domain(ascii_domain),
        _in_suffix_set(ascii_domain, DISPOSABLE_DOMAINS),
        is_free_mail(ascii_domain),
    )


@lru_cache(maxsize=16384)
def _local_facts(base: str) -> tuple[bool, bool, bool]:
    """(placeholder, role account, keyboard mash) for a local part sans +tag."""
    fake = _is_fake_local(base)
    role = _is_role(base)
    mash = False
    if not fake and not role:
        # Only a local part with a single run of letters ("asdf", "qwerty123")
        # is checked: "first.last" shapes are people, and checking runs
        # separately keeps "jill.llewellyn" from looking like "lll".
        runs = _LETTER_RUN_RE.findall(base)
        mash = (
            len(runs) == 1
            and len(runs[0]) >= 4
            and is_keyboard_mash(runs[0], vowel_rule=False, min_repeat=4)
        )
    return fake, role, mash


# --------------------------------------------------------------------------
# Syntax validation
# --------------------------------------------------------------------------


def _fast_path_ok(address: str) -> bool:
    """Cheap acceptance for the common all-ASCII shape (a subset of what
    email-validator accepts; anything else goes to email-validator)."""
    if len(address) > EMAIL_MAX_LENGTH or FAST_EMAIL_RE.fullmatch(address) is None:
        return False
    domain = address[address.rindex("@") + 1 :]
    if len(domain) > 253 or "--" in domain:
        return False
    return domain.rpartition(".")[2] not in _SPECIAL_USE_TLDS


@lru_cache(maxsize=4096)
def _validate(address: str) -> tuple[str, str, str] | str:
    """(local, domain, ascii_domain) for a valid lower-cased address, else the
    error message. Never raises."""
    if _fast_path_ok(address):
        local, _, domain = address.rpartition("@")
        return local, domain, domain
    if len(address) > EMAIL_MAX_LENGTH and (
        len(unicodedata.normalize("NFC", address)) > EMAIL_MAX_LENGTH
    ):
        return f"The email address is too long ({len(address)} characters, max 254)."
    try:
        info = validate_email(address, check_deliverability=False)
    except ValueError as exc:  # EmailNotValidError, idna.IDNAError, UnicodeError
        return str(exc) or "The email address is not valid."
    ascii_domain = (info.ascii_domain or info.domain).lower()
    return info.local_part.lower(), info.domain.lower(), ascii_domain


def _prepare(text: str) -> str:
    s = text.strip()
    if s[:7].lower() == "mailto:":
        s = s[7:].strip()
    if s.startswith("<") and s.endswith(">"):
        s = s[1:-1].strip()
    if s.endswith("."):  # "ann@acme.com." typed at the end of a sentence
        s = s.rstrip(".")
    return s.lower()


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def email_domain(email: Any) -> str | None:
    """Lower-case domain of a syntactically valid address (as written, i.e.
    without typo correction), else ``None``."""
    text = as_text(email)
    if not text or not text.strip():
        return None
    result = _validate(_prepare(text))
    return None if isinstance(result, str) else result[1]


def normalize_email(raw: Any) -> EmailCheck:
    """Normalise and classify one email address. Never raises."""
    text = as_text(raw)
    if text is None or len(text) > _CACHE_MAX_INPUT:
        return _analyze(text)
    return _analyze_cached(text)


_MISSING_REASONS = (Reason(ReasonCode.EMAIL_MISSING, "email", "Email address is missing"),)
_MISSING_NONE = EmailCheck(original=None, email=None, error="missing", reasons=_MISSING_REASONS)


def _analyze(text: str | None) -> EmailCheck:
    if text is None:
        return _MISSING_NONE
    if not text.strip() or text.strip().lower() == "mailto:":
        return EmailCheck(original=text, email=None, error="missing", reasons=_MISSING_REASONS)
    address = _prepare(text)
    result = _validate(address)
    if isinstance(result, str):
        return EmailCheck(
            original=text,
            email=address.replace("\x00", ""),  # PostgreSQL cannot store NUL
            error=result,
            reasons=(
                Reason(
                    ReasonCode.EMAIL_INVALID,
                    "email",
                    f"Invalid email address {shorten(address)!r}: {result}",
                ),
            ),
        )

    local, domain, ascii_domain = result
    reasons: list[Reason] = []
    typo_corrected = False
    corrected = DOMAIN_TYPOS.get(ascii_domain)
    if corrected is not None:
        typo_corrected = True
        reasons.append(
            Reason(
                ReasonCode.EMAIL_TYPO_CORRECTED,
                "email",
                f"Corrected email domain {domain} to {corrected}",
            )
        )
        domain = ascii_domain = corrected
    email = f"{local}@{domain}"

    suggestion: str | None = None
    if not typo_corrected:
        suggested_domain = _suggest_domain(ascii_domain)
        if suggested_domain is not None:
            suggestion = f"{local}@{suggested_domain}"
            reasons.append(
                Reason(
                    ReasonCode.EMAIL_TYPO_SUGGESTED,
                    "email",
                    f"Email domain {domain} looks like a typo; did you mean {suggested_domain}?",
                )
            )

    base = local.partition("+")[0] or local
    fake_domain, disposable, free_mail = _domain_facts(ascii_domain)
    fake_local, role, mash = _local_facts(base)

    if fake_domain:
        reasons.append(Reason(ReasonCode.EMAIL_FAKE, "email", f"Placeholder email domain {domain}"))
    elif fake_local:
        reasons.append(
            Reason(ReasonCode.EMAIL_FAKE, "email", f"Placeholder email address {shorten(email)}")
        )
    if disposable:
        reasons.append(
            Reason(ReasonCode.EMAIL_DISPOSABLE, "email", f"Disposable email domain {domain}")
        )
    if role:
        reasons.append(
            Reason(
                ReasonCode.EMAIL_ROLE,
                "email",
                f"Role account {shorten(base)}@ is a shared mailbox, not a person",
            )
        )
    elif mash:
        reasons.append(
            Reason(
                ReasonCode.KEYBOARD_MASH,
                "email",
                f"Email local part {shorten(base)!r} looks like keyboard mashing",
            )
        )

    return EmailCheck(
        original=text,
        email=email,
        valid=True,
        local_part=local,
        domain=domain,
        ascii_domain=ascii_domain,
        is_free_mail=free_mail,
        is_disposable=disposable,
        is_role=role,
        is_fake=fake_domain or fake_local,
        typo_corrected=typo_corrected,
        suggestion=suggestion,
        reasons=tuple(reasons),
    )


_analyze_cached = lru_cache(maxsize=4096)(_analyze)
