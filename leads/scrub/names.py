"""Person-name normalisation and fake/mash detection.

Normalisation is deliberately conservative: text is trimmed and whitespace
collapsed, and only *all-lower* or *ALL-UPPER* input made of letters and name
punctuation is re-cased ("o'brien" -> "O'Brien", "JEAN-LUC" -> "Jean-Luc",
"van der berg" -> "Van der Berg"). Mixed-case input ("DeShawn", "McKenzie"),
non-Latin scripts ("李") and anything with digits or markup is kept verbatim.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from .data import (
    FAKE_FULL_NAMES,
    FAKE_NAME_VALUES,
    KEYBOARD_ROWS,
    MAC_NAMES,
    NAME_PARTICLES,
    UPPER_SUFFIXES,
)
from .reasons import Reason, ReasonCode
from .text import as_text, clean_text, shorten

__all__ = [
    "check_full_name",
    "check_person_name",
    "clean_and_recase",
    "is_keyboard_mash",
    "normalize_person_name",
    "recase_name",
]


def _row_substrings(min_len: int, exact_len: int | None = None) -> frozenset[str]:
    out: set[str] = set()
    for row in KEYBOARD_ROWS:
        for seq in (row, row[::-1]):
            for i in range(len(seq)):
                for j in range(i + min_len, len(seq) + 1):
                    if exact_len is None or j - i == exact_len:
                        out.add(seq[i:j])
    return frozenset(out)


#: A whole token equal to one of these is a mash ("asdf", "qwertyuiop").
_ROW_TOKENS = _row_substrings(4)
#: A token *containing* one of these 5-grams is a mash ("xasdfgx"). Shorter
#: runs are not used for "contains": "Liberty" contains "erty".
_ROW_5GRAMS = _row_substrings(5, exact_len=5)
_VOWELS = frozenset("aeiouy")
_REPEATED_UNIT_RE = re.compile(r"(.{1,3})\1{2,}")


def _repeat_re(times: int) -> re.Pattern[str]:
    """One character repeated ``times`` (or more) times in a row."""
    return re.compile(r"(.)" + r"\1" * (max(times, 2) - 1))


_REPEAT_RE = {n: _repeat_re(n) for n in (3, 4)}
_LETTER_RUN_RE = re.compile(r"[^\W\d_]+")
_DIGIT_RE = re.compile(r"\d")
_URL_RE = re.compile(
    # Bare domains only for TLDs that cannot be a name particle or initial
    # ("M.De Souza", "Jo.Me" must not match).
    # (Label length is bounded so the scan stays linear on hostile input.)
    # An email address ("ann@acme.com") is not a URL: see _EMAIL_LIKE_RE.
    r"(?i)(?:https?://|ftp://|www\.|(?<!@)\b[a-z0-9][a-z0-9-]{1,62}\."
    r"(?:com|net|org|info|biz|ru|cn|io|xyz|top|online|site|shop|click|link|club)"
    r"\b)"
)
_EMAIL_LIKE_RE = re.compile(r"[^\s@]@[^\s@]+\.[^\s@]")
_MARKUP_RE = re.compile(r"<\s*/?\s*[a-zA-Z!][^<>]*>|&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")
_APOSTROPHES = "'\u2019"  # ASCII and typographic (right single quote)
# Anything but letters, spaces and name punctuation blocks re-casing.
_RECASE_BLOCKER_RE = re.compile(r"[^\w .,\-" + _APOSTROPHES + r"]|[\d_]")
_PART_RE = re.compile(r"[^\-.]+")


def _looks_like_url(value: str) -> bool:
    return ("." in value or ":" in value) and _URL_RE.search(value) is not None


def is_keyboard_mash(token: str, *, vowel_rule: bool = True, min_repeat: int = 3) -> bool:
    """Heuristic: does a single word look like random key presses?

    True for a keyboard-row run ("asdf", "qwertyuiop", "lkjh"), a word
    containing a 5-key row run ("xxasdfgxx"), one character repeated
    ``min_repeat``+ times ("aaa"), a short unit repeated 3+ times ("jkjkjk"),
    and -- with ``vowel_rule`` -- ASCII words of 5+ letters without a vowel
    (``y`` counts as one). Real short names ("Ng", "Li", "Bo", "Wu") never
    match.
    """
    t = token.casefold()
    n = len(t)
    if n < 3:
        return False
    if n >= 4 and t in _ROW_TOKENS:
        return True
    repeat_re = _REPEAT_RE.get(min_repeat) or _repeat_re(min_repeat)
    if repeat_re.search(t):
        return True
    if n >= 4 and _REPEATED_UNIT_RE.fullmatch(t):
        return True
    if vowel_rule and n >= 5 and t.isascii() and t.isalpha() and _VOWELS.isdisjoint(t):
        return True
    if n >= 6:  # n == 5 is covered by _ROW_TOKENS
        grams = _ROW_5GRAMS
        for i in range(n - 4):
            if t[i : i + 5] in grams:
                return True
    return False


# --------------------------------------------------------------------------
# Re-casing
# --------------------------------------------------------------------------


def _cap_part(part: str) -> str:
    if not part:
        return part
    if part in MAC_NAMES:
        return "Mac" + part[3:4].upper() + part[4:]
    if len(part) > 2 and part.startswith("mc") and part[2].isalpha():
        return "Mc" + part[2].upper() + part[3:]
    if len(part) > 2 and part[1] in _APOSTROPHES and part[0].isalpha() and part[2].isalpha():
        return part[0].upper() + part[1] + part[2].upper() + part[3:]
    return part[:1].title() + part[1:]


def _cap_word(word: str) -> str:
    if "-" in word or "." in word:  # "jean-luc", "j.r.r."
        return _PART_RE.sub(lambda m: _cap_part(m.group(0)), word)
    return _cap_part(word)


def recase_name(value: str) -> str:
    """Capitalise an all-lower or ALL-UPPER name; anything else is returned
    unchanged. ``value`` must already be whitespace-collapsed."""
    if not (value.islower() or value.isupper()):
        return value
    if _RECASE_BLOCKER_RE.search(value) is not None or _looks_like_url(value):
        return value
    words = value.lower().split(" ")
    out: list[str] = []
    for i, word in enumerate(words):
        if i and word in NAME_PARTICLES:
            out.append(word)
        elif i and word in UPPER_SUFFIXES:
            out.append(word.upper())
        else:
            out.append(_cap_word(word))
    return " ".join(out)


@lru_cache(maxsize=16384)
def _clean_and_recase_cached(text: str) -> tuple[str, str]:
    trimmed = clean_text(text)
    return trimmed, recase_name(trimmed)


def clean_and_recase(text: str) -> tuple[str, str]:
    """``(whitespace-cleaned, re-cased)`` forms of ``text`` (memoised)."""
    if len(text) > 256:
        trimmed = clean_text(text)
        return trimmed, recase_name(trimmed)
    return _clean_and_recase_cached(text)


def normalize_person_name(raw: Any) -> str:
    """Trim, collapse whitespace and sensibly capitalise a person's name.

    ``None`` becomes ``""``. Unicode is never dropped; markup is kept as text.
    """
    text = as_text(raw)
    if not text:
        return ""
    return clean_and_recase(text)[1]


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------


def check_person_name(value: str, field: str) -> list[Reason]:
    """Findings for one already-normalised name field."""
    if not value:
        return []
    if len(value) <= 100:  # names repeat a lot within an import
        return list(_check_person_name_cached(value, field))
    return _check_person_name(value, field)


def _check_person_name(value: str, field: str) -> list[Reason]:
    reasons: list[Reason] = []
    shown = shorten(value)
    if _looks_like_url(value):
        reasons.append(Reason(ReasonCode.NAME_HAS_URL, field, f"Name {shown!r} contains a URL"))
    if ("<" in value or "&" in value) and _MARKUP_RE.search(value):
        reasons.append(Reason(ReasonCode.NAME_HAS_MARKUP, field, f"Name {shown!r} contains markup"))
    if _DIGIT_RE.search(value):
        reasons.append(Reason(ReasonCode.NAME_HAS_DIGITS, field, f"Name {shown!r} contains digits"))
    if reasons:
        return reasons
    if "@" in value and _EMAIL_LIKE_RE.search(value):
        return [Reason(ReasonCode.FAKE_NAME, field, f"Name {shown!r} is an email address")]
    if value.casefold() in FAKE_NAME_VALUES:
        return [Reason(ReasonCode.FAKE_NAME, field, f"Name {shown!r} is a placeholder")]
    for token in _LETTER_RUN_RE.findall(value):
        if is_keyboard_mash(token):
            return [
                Reason(
                    ReasonCode.KEYBOARD_MASH,
                    field,
                    f"Name {shown!r} looks like keyboard mashing",
                )
            ]
    return []


@lru_cache(maxsize=16384)
def _check_person_name_cached(value: str, field: str) -> tuple[Reason, ...]:
    return tuple(_check_person_name(value, field))


def check_full_name(first: str, last: str) -> list[Reason]:
    """Findings about the first/last name pair (field ``"name"``)."""
    full = f"{first} {last}".strip().casefold()
    if not full:
        return []
    if full in FAKE_FULL_NAMES:
        shown = shorten(f"{first} {last}".strip())
        return [Reason(ReasonCode.FAKE_NAME, "name", f"Name {shown!r} is a well-known fake")]
    if first and last and first.casefold() == last.casefold():
        return [
            Reason(
                ReasonCode.NAME_EQUALS_LAST,
                "name",
                f"First and last name are the same ({shorten(first)!r})",
            )
        ]
    return []
