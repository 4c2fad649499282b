"""Report tables and their CSV download.

A `ReportTable` is what every chart has beneath it: columns with a kind (how to
format the cell) and rows as dicts. The same object renders as HTML and as CSV,
so the download always equals what the page shows.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from django.http import HttpResponse
from django.utils import timezone
from django.utils.text import slugify

from leadflow.core import csvsafe
from reports.formatting import csv_value


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "int"  # int | pct | change | money | duration | ratio | text

    @property
    def numeric(self) -> bool:
        return self.kind != "text"

    @property
    def csv_label(self) -> str:
        unit = {"pct": " (%)", "change": " (%)", "duration": " (minutes)"}.get(self.kind, "")
        return self.label + unit


@dataclass
class ReportTable:
    slug: str  # unique on its page; the CSV link names it (?export=slug)
    title: str
    columns: list[Column]
    rows: list[dict] = field(default_factory=list)
    footer: dict | None = None  # a totals row, when it means something
    note: str = ""  # how the numbers are defined, shown under the table

    def __bool__(self) -> bool:
        return bool(self.rows)


def neutralize(text: str) -> str:
    # Numbers we wrote ourselves (a negative ROI) stay numbers.
    return csvsafe.neutralize(text, keep_numbers=True)


def table_csv(table: ReportTable) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c.csv_label for c in table.columns])
    rows = table.rows + ([table.footer] if table.footer else [])
    for row in rows:
        writer.writerow([neutralize(csv_value(row.get(c.key), c.kind)) for c in table.columns])
    return out.getvalue()


def csv_response(table: ReportTable, *, prefix: str = "report") -> HttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = HttpResponse(table_csv(table), content_type="text/csv; charset=utf-8")
    name = slugify(f"{prefix}-{table.slug}") or "report"
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response
