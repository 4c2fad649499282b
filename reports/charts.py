"""A chart on a report page: Chart.js data plus the table it is drawn from.

`static/js/charts.js` draws every `<canvas data-chart data-chart-kind="report">`; `kind` picks the
look: line (trends), bar, stacked (stacked bars), hbar (horizontal bars),
funnel (horizontal bars, narrowing), doughnut.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reports.export import ReportTable


@dataclass
class Chart:
    slug: str
    title: str
    kind: str
    labels: list[str]
    datasets: list[dict]  # [{"label": str, "data": [numbers], optional "type"/"axis"/"format"}]
    table: ReportTable | None = None
    subtitle: str = ""
    value_format: str = "int"  # int | pct | money | duration (tooltips and axis)
    height: int = 300
    options: dict = field(default_factory=dict)

    @property
    def data(self) -> dict:
        return {
            "kind": self.kind,
            "labels": self.labels,
            "datasets": self.datasets,
            "format": self.value_format,
            "options": self.options,
        }

    @property
    def has_data(self) -> bool:
        return any(v for ds in self.datasets for v in ds.get("data", []) if v)


@dataclass
class Kpi:
    """A headline number with its value in the previous period."""

    label: str
    value: object
    kind: str = "int"
    previous: object = None
    good_when: str = "up"  # which direction is good news: up | down
    help: str = ""
    icon: str = "graph-up"

    @property
    def change(self) -> float | None:
        from reports.formatting import change

        if self.kind in ("pct", "change") and self.value is not None and self.previous is not None:
            return float(self.value) - float(self.previous)  # percentage points
        return change(self.value, self.previous)
