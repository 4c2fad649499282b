"""Reading uploaded CSV files: detect encoding, delimiter and header, then
stream records one by one.

Files come from everywhere — UTF-8 exports with or without a BOM, Excel's
"CSV" (cp1252 in most of Europe and the Americas, `;`-separated where the
decimal mark is a comma), UTF-16 "Unicode text" (tab-separated). Detection
reads a sample; streaming decodes with `surrogateescape` so that a row with
bytes the detected encoding can't read is reported on its own instead of
aborting the whole file.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import IO

from leadflow.core.errors import LeadflowError

MAX_IMPORT_BYTES = 100 * 1024 * 1024
SAMPLE_BYTES = 1024 * 1024
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_LABELS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# A quoted value over more lines than this is an unmatched quote swallowing rows.
MAX_RECORD_LINES = 50
# How many records the delimiter vote looks at.
_VOTE_RECORDS = 50
# Undecodable bytes come back as lone surrogates (errors="surrogateescape").
_SURROGATE = re.compile("[\udc80-\udcff]")
_ODD = re.compile("[\udc80-\udcff\x00]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_MAGIC = {
    b"PK\x03\x04": "an Excel workbook or a ZIP archive",
    b"\xd0\xcf\x11\xe0": "an old Excel (.xls) workbook",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip archive",
}


class ImportFileError(LeadflowError):
    """The uploaded file can't be imported at all (empty, binary, too big...)."""


@dataclass(frozen=True)
class CsvInfo:
    encoding: str
    delimiter: str
    header: list[str]
    total_rows: int


@dataclass(frozen=True)
class Record:
    """One data record of the file. `number` is its row in a spreadsheet
    (the header is row 1); `problem` says why it can't be imported, if so."""

    number: int
    values: list[str]
    problem: str = ""


_MB = 1024 * 1024


def format_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < _MB:
        return f"{size / 1024:.0f} KB"
    return f"{size / _MB:.1f} MB".replace(".0 MB", " MB")


def check_size(size: int) -> None:
    if size > MAX_IMPORT_BYTES:
        raise ImportFileError(
            f"The file is {size / _MB:.1f} MB; the limit is {format_size(MAX_IMPORT_BYTES)}. "
            "Split it into smaller files and import them one after the other."
        )
    if size == 0:
        raise ImportFileError("The file is empty.")


def _refuse_binary(sample: bytes) -> None:
    for magic, what in _MAGIC.items():
        if sample.startswith(magic):
            hint = (
                " In Excel, use File › Save As › “CSV UTF-8” and upload that file."
                if "Excel" in what
                else ""
            )
            raise ImportFileError(f"This looks like {what}, not a CSV file.{hint}")
    if b"\x00" in sample:
        raise ImportFileError("This is a binary file, not a CSV text file.")


def detect_encoding(sample: bytes, *, complete: bool) -> str:
    """UTF-8 unless the bytes say otherwise; then cp1252 (Excel's "ANSI"), else latin-1.

    A file that is mostly valid UTF-8 with a few broken bytes stays UTF-8: the
    broken rows are reported, the rest keep their accents intact.
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    # final=False keeps a multi-byte character cut by the sample's end out of the count.
    text = decoder.decode(sample, final=complete)
    bad = len(_SURROGATE.findall(text))
    if not bad:
        return "utf-8"
    good = sum(1 for ch in text if ord(ch) > 0x7F) - bad
    if good > bad:
        return "utf-8"
    try:
        sample.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1"
    return "cp1252"


def _vote_delimiter(text: str) -> str:
    """The delimiter that gives the widest header and the most rows of that width."""
    best, best_key = ",", (0.0, 1)
    for delimiter in DELIMITERS:
        try:
            records = [
                r for r in islice(csv.reader(io.StringIO(text), delimiter=delimiter), _VOTE_RECORDS)
            ]
        except csv.Error:
            continue
        records = [r for r in records if r]
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        consistent = sum(1 for r in records if len(r) == width) / len(records)
        key = (round(consistent, 2), width)
        if key > best_key:
            best, best_key = delimiter, key
    return best


def clean_header(raw: list[str]) -> list[str]:
    """Trimmed, non-empty and unique column names (they key the mapping)."""
    header: list[str] = []
    seen: dict[str, int] = {}
    for position, name in enumerate(raw, start=1):
        name = " ".join(_SURROGATE.sub("\ufffd", name).replace("\ufeff", "").split())[:200]
        name = name or f"Column {position}"
        count = seen.get(name.casefold(), 0) + 1
        seen[name.casefold()] = count
        header.append(name if count == 1 else f"{name} ({count})")
    return header


@contextmanager
def _text(binary: IO[bytes], encoding: str):
    binary.seek(0)
    stream = io.TextIOWrapper(binary, encoding=encoding, errors="surrogateescape", newline="")
    try:
        yield stream
    finally:
        # Leave the caller's file open (it may already be closed when a
        # half-read generator is collected late).
        with contextlib.suppress(ValueError):
            stream.detach()


class _LineTap:
    """Feeds the csv reader physical lines and keeps the ones of the current record."""

    def __init__(self, stream: IO[str]):
        self._lines = iter(stream)
        self.taken: list[str] = []
        self.count = 0

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.taken.append(line)
        self.count += 1
        return line


def _line_alone(text: str, delimiter: str, line: int) -> tuple[list[str] | None, str]:
    """One physical line read as a record of its own; an unmatched quote is an error."""
    try:
        values = next(csv.reader([text.rstrip("\r\n") + "\n"], delimiter=delimiter), [])
    except csv.Error as exc:
        return None, f"Line {line} can't be read as CSV ({exc})."
    # A value of one physical line holds a line break only if a quote never closed.
    if any("\n" in value for value in values):
        return None, (
            f'Line {line} has an unmatched quote (") that would swallow the lines after it; '
            "fix the quote and import this row again."
        )
    return values, ""


def _swallowed(values: list[str] | None, span: list[str], width: int, delimiter: str) -> bool:
    """Whether a record over several lines is an unmatched quote eating rows, not a
    value with line breaks: too many lines, the wrong width, or a line inside it
    that is a complete row by itself."""
    if values is None or len(span) > MAX_RECORD_LINES or len(values) != width:
        return True
    for text in span[1:]:
        alone, _error = _line_alone(text, delimiter, 0)
        if alone is not None and len(alone) >= width:
            return True
    return False


def _raw_records(
    stream: IO[str], delimiter: str
) -> Iterator[tuple[int, int, list[str] | None, str]]:
    """(record number, first physical line, values or None, csv error).

    Survives a malformed record, and accounts for every physical line: a record
    an unmatched quote stretched over following rows is read again line by line,
    the line with the quote reported, the others imported as the rows they are.
    """
    tap = _LineTap(stream)
    reader = csv.reader(tap, delimiter=delimiter)
    number = 0
    width: int | None = None  # the header's, once seen
    while True:
        tap.taken = []
        first_line = tap.count + 1
        try:
            values: list[str] | None = next(reader)
            error = ""
        except StopIteration:
            return
        except csv.Error as exc:
            values, error = None, f"The row can't be read as CSV ({exc})."
        span = tap.taken
        if width is not None and len(span) > 1 and _swallowed(values, span, width, delimiter):
            for line, text in enumerate(span, start=first_line):
                number += 1
                yield number, line, *_line_alone(text, delimiter, line)
            continue
        number += 1
        if width is None and values and any(v.strip() for v in values):
            width = len(values)
        yield number, first_line, values, error


def inspect_csv(binary: IO[bytes]) -> CsvInfo:
    """Detect encoding, delimiter and header, and count the data rows.

    Raises ImportFileError for files that can't be imported at all.
    """
    binary.seek(0)
    sample = binary.read(SAMPLE_BYTES)
    complete = len(sample) < SAMPLE_BYTES
    if not sample.strip():
        raise ImportFileError("The file is empty.")
    encoding = detect_encoding(sample, complete=complete)
    if encoding != "utf-16":
        _refuse_binary(sample)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=complete)
    if len(_CONTROL.findall(text[:100_000])) > 10:
        raise ImportFileError("This is a binary file, not a CSV text file.")
    if not complete:
        text = text[: text.rfind("\n") + 1] or text  # drop the record cut by the sample
    delimiter = _vote_delimiter(text)
    header: list[str] | None = None
    total = 0
    with _text(binary, encoding) as stream:
        for _number, _line, values, _error in _raw_records(stream, delimiter):
            if header is None:
                if values and any(v.strip() for v in values):
                    header = clean_header(values)
                continue
            if values is None or any(v.strip() for v in values):
                total += 1
    if header is None:
        raise ImportFileError("The file has no header row: the first line must name the columns.")
    if total == 0:
        raise ImportFileError("The file has a header row but no data rows.")
    return CsvInfo(encoding=encoding, delimiter=delimiter, header=header, total_rows=total)


def _problem(values: list[str], width: int, encoding: str, odd: bool) -> str:
    if len(values) < width:
        return f"The row has {len(values)} values but the header has {width} columns."
    if len(values) > width and any(v.strip() for v in values[width:]):
        return (
            f"The row has {len(values)} values but the header has {width} columns "
            "(a delimiter or quote inside a value?)."
        )
    if odd and any(_SURROGATE.search(value) for value in values):
        return f"The row contains bytes that aren't valid {encoding} text (shown as \ufffd)."
    return ""


def readable(value: str) -> str:
    """A value fit for a report: undecodable bytes become U+FFFD, NULs go."""
    return _SURROGATE.sub("\ufffd", value).replace("\x00", "")


def iter_records(binary: IO[bytes], *, encoding: str, delimiter: str, width: int):
    """Yield every non-blank data record after the header, numbered as in a
    spreadsheet, each with the reason it can't be imported if it can't."""
    header_seen = False
    with _text(binary, encoding) as stream:
        for number, _line, values, error in _raw_records(stream, delimiter):
            if not header_seen:
                if values and any(v.strip() for v in values):
                    header_seen = True
                continue
            if values is None:
                yield Record(number=number, values=[], problem=error)
                continue
            if not any(v.strip() for v in values):
                continue
            # One scan of the whole record finds the rare undecodable bytes and NULs.
            odd = _ODD.search("\x1e".join(values)) is not None
            problem = _problem(values, width, encoding, odd)
            if problem or odd:
                values = [readable(v) for v in values]  # PostgreSQL refuses NUL in text
            if len(values) > width and not problem:
                values = values[:width]  # trailing empty cells (common in Excel exports)
            yield Record(number=number, values=values, problem=problem)
