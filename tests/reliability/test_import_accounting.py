"""Every physical line of an imported CSV is accounted for: imported, merged or
reported with its line number. An unmatched quote must not swallow the rows
after it into one value (the CSV reader's default: read to the next quote)."""

from __future__ import annotations

import csv
import io

import pytest

from leadflow.core.tenancy import tenant_scope
from leads.importing import inspect_csv, iter_records
from leads.models import Lead
from tests.leads.test_import_jobs import counts, report_rows, start, upload
from tests.reliability.dataset import dataset_lines


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def stray_quote_file() -> tuple[bytes, int]:
    """200 real leads; every 10th line saved by an Excel in cp1252 with accents
    added, the others UTF-8 (some with accents); line 101 has a stray opening
    quote in its last value. Returns the file and the line of the quote."""
    header, *rows = dataset_lines(200)
    out = [header]
    for line, row in enumerate(rows, start=2):
        text = row.decode()
        if line % 10 == 0:
            out.append(text.replace(",Select,", ",Sélection,").encode("cp1252"))
            continue
        if line % 7 == 0:
            text = text.replace(",India,", ",Índia,")
        if line == 101:
            body = text.rstrip("\r\n")
            cut = body.rfind(",") + 1
            text = body[:cut] + '"' + body[cut:] + "\r\n"
        out.append(text.encode())
    return b"".join(out), 101


def test_a_stray_quote_in_a_mixed_encoding_file_loses_no_line(
    org, other_org, admin, django_capture_on_commit_callbacks
):
    data, quote_line = stray_quote_file()
    data_lines = len(data.splitlines()) - 1
    assert data_lines == 200
    job = upload(org, admin, data, name="mixed.csv")
    assert job.total_rows == data_lines  # counted as the reader will read them
    job = start(job, django_capture_on_commit_callbacks)
    created, merged, junk, failed = counts(job)
    assert created + merged + junk + failed == data_lines == job.processed_rows
    report = {int(row[0]): row for row in report_rows(job)[1:]}
    assert len(report) == junk + failed
    assert quote_line in report
    assert report[quote_line][2].startswith(f"Line {quote_line} has an unmatched quote")
    # Undecodable lines, if the detected encoding can't read them, are reported too.
    assert all(r[2].startswith(("Line", "The row contains bytes")) for n, r in report.items()), (
        report
    )
    with tenant_scope(org):
        assert Lead.objects.count() == created
        # The line after the quote is a lead of its own, not the tail of a value.
        after = dataset_lines(200)[quote_line].decode().split(",")[0]
        assert Lead.objects.filter(external_id=after).exists()
    with tenant_scope(other_org):
        assert not Lead.objects.exists()


def read(text: str) -> list[tuple[int, list[str], str]]:
    binary = io.BytesIO(text.encode())
    info = inspect_csv(binary)
    records = list(iter_records(binary, encoding="utf-8", delimiter=",", width=len(info.header)))
    assert info.total_rows == len(records)
    return [(r.number, r.values, r.problem) for r in records]


def people(start: int, stop: int) -> str:
    return "".join(f"p{i}@acme-corp.com,Person {i}\r\n" for i in range(start, stop))


def test_a_quote_that_swallows_to_the_end_with_the_right_width_is_caught():
    # The silent case: one record of the right width, the other rows in its value.
    text = "Email,Name\r\n" + people(2, 4) + 'p4@acme-corp.com,"Carl\r\n' + people(5, 11)
    records = read(text)
    assert [number for number, _values, _problem in records] == list(range(2, 11))
    problems = {number: problem for number, _values, problem in records if problem}
    assert list(problems) == [4]
    assert problems[4].startswith("Line 4 has an unmatched quote")
    assert records[-1][1] == ["p10@acme-corp.com", "Person 10"]


def test_two_stray_quotes_and_a_swallow_past_the_field_limit_lose_no_line():
    rows = 6000  # swallowed, more than the csv module's field size limit (128 KB)
    text = (
        "Email,Name\r\n"
        + 'p2@acme-corp.com,Ann "The\r\n'  # a quote inside a value is fine
        + 'p3@acme-corp.com,"Bob\r\n'
        + people(4, 8)
        + 'p8@acme-corp.com,Eve"\r\n'
        + 'p9@acme-corp.com,"Dan\r\n'
        + people(10, rows)
    )
    assert len(text) - text.index('"Dan') > 131072
    records = read(text)
    assert len(records) == text.count("\r\n") - 1
    assert [n for n, _v, problem in records if problem] == [3, 9]
    assert records[6][1] == ["p8@acme-corp.com", 'Eve"']  # the closing quote was literal
    assert records[0][1] == ["p2@acme-corp.com", 'Ann "The']


def test_a_value_over_a_few_lines_stays_one_record():
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows(
        [
            ["Email", "Name", "Address"],
            ["a@acme-corp.com", "Ann", "1 Main St\nSpringfield\nUSA"],
            ["b@acme-corp.com", "Bob", 'Flat "B"\n2 High St'],
        ]
    )
    records = read(buffer.getvalue())
    assert [(n, problem) for n, _values, problem in records] == [(2, ""), (3, "")]
    assert records[0][1][2] == "1 Main St\nSpringfield\nUSA"
