"""Small text helpers shared by the scrub modules."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["as_text", "clean_text", "shorten"]


def as_text(value: Any) -> str | None:
    """Coerce a raw form/JSON/CSV value to ``str`` (``None`` stays ``None``).

    Numbers coming from spreadsheets are common (``4155552671.0``), so
    integral floats lose their ``.0``; NaN/inf become ``None``.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    try:
        return str(value)
    except Exception:  # a hostile __str__ must not break an import
        return None


def clean_text(value: str) -> str:
    """Trim, collapse runs of whitespace to one space, drop NUL characters.

    NUL is the only character removed: PostgreSQL text columns cannot store
    it. Everything else (unicode, markup, punctuation) is kept verbatim.
    """
    if "\x00" in value:
        value = value.replace("\x00", "")
    return " ".join(value.split())


def shorten(value: str, limit: int = 40) -> str:
    """``value`` cut to ``limit`` characters for use inside messages."""
    return value if len(value) <= limit else value[: limit - 1] + "…"
