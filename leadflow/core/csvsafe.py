"""CSV cells that spreadsheet apps would run as formulas (CSV injection)."""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value, *, keep_numbers: bool = False) -> str:
    """Prefix a quote to a cell starting like a formula. With `keep_numbers`, a
    number we wrote ourselves (a negative ROI) stays a number."""
    text = "" if value is None else str(value)
    if not text.startswith(FORMULA_START):
        return text
    if keep_numbers:
        try:
            float(text)
            return text
        except ValueError:
            pass
    return "'" + text
