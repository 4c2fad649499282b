"""CSV cells that spreadsheet apps would run as formulas (CSV injection)."""

from __future__ import annotations

import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A cell starting with + or - that holds only digits and phone punctuation
# ("+49 30 1234567", "-12.5", "+1 (555) 010-0100") names no function and no
# cell: a spreadsheet can at most do arithmetic on it, never run anything. It
# stays as written, so exported phones and numbers import again unchanged.
_PLAIN_NUMBER = re.compile(r"[+-][\d\s().\-/]*\d[\d\s().\-/]*\Z")


def neutralize(value, *, keep_numbers: bool = True) -> str:
    """Prefix a quote to a cell that a spreadsheet would run as a formula: one
    starting with =, @, a tab or a carriage return, or with + or - followed by
    anything but a number or phone number. `keep_numbers=False` quotes every
    + and - start (for text that is never a number)."""
    text = "" if value is None else str(value)
    if not text.startswith(FORMULA_START):
        return text
    if keep_numbers and text[0] in "+-" and _PLAIN_NUMBER.match(text):
        return text
    return "'" + text
