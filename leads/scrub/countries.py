"""Country normalisation to ISO 3166-1 alpha-2.

pycountry's ``search_fuzzy`` is far too slow for imports, so a dict from a
normalised key to the alpha-2 code is built once at import time from every
pycountry name, official name, common name, alpha-2 and alpha-3 code ("Korea,
Republic of" also as "Republic of Korea"), plus :data:`COUNTRY_ALIASES`.

The key is case-folded, stripped of diacritics, ``.``/apostrophes removed,
other punctuation turned into spaces, ``&`` -> ``and``, and a leading or
trailing "the" dropped, so "U.S.A.", "u.s.a", "USA" and "usa" all meet.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

import pycountry

from .data import COUNTRY_ALIASES
from .text import as_text

__all__ = ["COUNTRY_CODES", "country_key", "is_country_code", "normalize_country"]

_DROP_RE = re.compile("[.'\u2019`\u00b4]")  # ASCII/typographic apostrophes, periods
_SPACE_RE = re.compile(r"[^\w]+")


def country_key(value: str) -> str:
    """Normalised lookup key for a country name or code."""
    s = value.casefold().replace("&", " and ")
    if not s.isascii():
        s = "".join(ch for ch in unicodedata.normalize("NFKD", s) if not unicodedata.combining(ch))
    s = _DROP_RE.sub("", s)
    s = _SPACE_RE.sub(" ", s).replace("_", " ").strip()
    if s.startswith("the "):
        s = s[4:]
    if s.endswith(" the"):
        s = s[:-4]
    return s


def _build_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for country in pycountry.countries:
        code = country.alpha_2
        names = [country.alpha_2, country.alpha_3, country.name]
        for attr in ("official_name", "common_name"):
            extra = getattr(country, attr, None)
            if extra:
                names.append(extra)
        for name in list(names):
            # "Korea, Republic of" -> "Republic of Korea"
            if ", " in name:
                head, _, tail = name.partition(", ")
                names.append(f"{tail} {head}")
        for name in names:
            index.setdefault(country_key(name), code)
    for alias, code in COUNTRY_ALIASES.items():
        index[country_key(alias)] = code
    index.pop("", None)
    return index


#: Normalised key -> ISO alpha-2 code.
COUNTRY_CODES: dict[str, str] = _build_index()
_VALID_CODES = frozenset(COUNTRY_CODES.values())


@lru_cache(maxsize=4096)
def _lookup(text: str) -> str | None:
    return COUNTRY_CODES.get(country_key(text))


def normalize_country(raw: Any) -> str | None:
    """ISO 3166-1 alpha-2 code for a country name/code/alias, else ``None``.

    >>> normalize_country("U.S.A."), normalize_country("Deutschland")
    ('US', 'DE')
    >>> normalize_country("Asia/Pacific Region") is None
    True
    """
    text = as_text(raw)
    if not text:
        return None
    text = text.strip()
    if not text or len(text) > 100:
        return None
    return _lookup(text)


def is_country_code(code: str | None) -> bool:
    """True for an alpha-2 code this module can return."""
    return code in _VALID_CODES
