"""Medians, percentiles and counts computed by the database, in one statement.

`summarize(rows, ...)` wraps a queryset (the facts, already filtered and scoped)
and aggregates it per group: for each measure the number of values and the
chosen percentiles, plus counts of rows matching conditions. Nothing but the
aggregates comes back to Python, so the cost grows with the period's rows inside
the database, not with a Python loop.

Percentiles are "linear interpolation between closest ranks" — the definition of
`reports.formatting.percentile`, PostgreSQL's `percentile_cont` and numpy's
default. PostgreSQL uses `percentile_cont`; SQLite, which lacks it, numbers each
group's values with ROW_NUMBER/COUNT windows and interpolates between the two
ranks around (n − 1) · p.

Seconds between two timestamps keep their microseconds on both (PostgreSQL's
interval epoch; SQLite's stored text split into whole seconds and microseconds),
so the figures equal the ones Python computes from the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass

from django.db import connections, transaction
from django.db.models import QuerySet

from leadflow.core.dbrouter import read_alias


@dataclass(frozen=True)
class Measure:
    """A value per row (SQL over the row's columns; NULL where the row has none)."""

    name: str
    sql: str
    percents: tuple[int, ...]


def seconds_between(later: str, earlier: str, *, vendor: str) -> str:
    """SQL for the seconds from `earlier` to `later` (both timestamp columns)."""
    if vendor == "postgresql":
        # date_part: double precision from the interval's microseconds (EXTRACT's
        # numeric is exact too, but several times slower per row).
        return f"date_part('epoch', ({later}) - ({earlier}))"
    # SQLite stores 'YYYY-MM-DD HH:MM:SS[.ffffff]' (UTC). julianday() keeps only
    # milliseconds, so take whole seconds from it (rounded) and microseconds from the text.
    whole = (
        f"ROUND((julianday(substr({later}, 1, 19)) - julianday(substr({earlier}, 1, 19))) * 86400)"
    )
    micros = f"CAST(substr({later}, 21, 6) AS INTEGER) - CAST(substr({earlier}, 21, 6) AS INTEGER)"
    return f"(({whole}) * 1000000 + {micros}) / 1000000.0"


def at_least_zero(sql: str) -> str:
    return f"CASE WHEN ({sql}) < 0 THEN 0.0 ELSE ({sql}) END"


def _sqlite_percentile(name: str, p: int) -> str:
    """Interpolated p-th percentile of column m_<name>, ranked k_<name> of n_<name>."""
    pos = f"((n_{name} - 1) * {p} / 100.0)"
    low = f"CAST({pos} AS INTEGER)"  # floor: pos ≥ 0 wherever a value exists
    at_low = f"MAX(CASE WHEN k_{name} = {low} + 1 THEN m_{name} END)"
    at_high = f"MAX(CASE WHEN k_{name} = {low} + 2 THEN m_{name} END)"
    frac = f"MAX({pos} - {low})"
    return f"({at_low} + CASE WHEN {frac} > 0 THEN ({at_high} - {at_low}) * {frac} ELSE 0 END)"


def compiled(rows: QuerySet) -> tuple[str, tuple]:
    """A queryset's SQL and parameters, to use as a derived table."""
    sql, params = rows.query.get_compiler(using=rows.db).as_sql()
    return sql, tuple(params)


def summarize(
    rows: QuerySet | tuple[str, tuple],
    *,
    measures: Iterable[Measure],
    counts: dict[str, str] | None = None,
    group: str | None = None,
) -> dict:
    """{group value: {"<m>_n": count, "<m>_p<p>": percentile, "<count name>": n}}.

    rows: the facts, a queryset or (SQL, params) (their columns, as `r.<name>`, are
    what the SQL snippets use); group: SQL for the group key (None: one group, key
    None). Groups with no rows are absent."""
    measures = list(measures)
    counts = counts or {}
    connection = connections[rows.db if isinstance(rows, QuerySet) else read_alias()]
    inner, params = compiled(rows) if isinstance(rows, QuerySet) else rows
    columns = [f"{group or 'NULL'} AS g"]
    columns += [f"{m.sql} AS m_{m.name}" for m in measures]
    columns += [f"CASE WHEN {cond} THEN 1 ELSE 0 END AS c_{name}" for name, cond in counts.items()]
    source = f"SELECT {', '.join(columns)} FROM ({inner}) r"

    out_names: list[str] = []
    selects: list[str] = []
    for m in measures:
        out_names.append(f"{m.name}_n")
        selects.append(f"COUNT(m_{m.name})")
        for p in m.percents:
            out_names.append(f"{m.name}_p{p}")
            if connection.vendor == "postgresql":
                selects.append(f"percentile_cont({p} / 100.0) WITHIN GROUP (ORDER BY m_{m.name})")
            else:
                selects.append(_sqlite_percentile(m.name, p))
    for name in counts:
        out_names.append(name)
        selects.append(f"SUM(c_{name})")

    if connection.vendor != "postgresql":
        # Rank each group's values (NULLs last) and count them.
        windows = [
            f"ROW_NUMBER() OVER (PARTITION BY g ORDER BY m_{m.name} IS NULL, m_{m.name})"
            f" AS k_{m.name}, COUNT(m_{m.name}) OVER (PARTITION BY g) AS n_{m.name}"
            for m in measures
        ]
        source = f"SELECT s.*, {', '.join(windows)} FROM ({source}) s" if windows else source
    sql = f"SELECT g, {', '.join(selects)} FROM ({source}) w GROUP BY g"
    postgres = connection.vendor == "postgresql"
    scope = transaction.atomic(using=connection.alias) if postgres else nullcontext()
    with scope, connection.cursor() as cursor:
        if postgres:
            # Past ~100k rows the plan's cost turns JIT compilation on, which takes
            # longer than these short aggregates (as in scoring.engine.apply); the
            # sorts of a busy month (~50k values) fit in memory with a little more.
            cursor.execute(
                "SELECT set_config('jit', 'off', true), set_config('work_mem', '32MB', true)"
            )
        cursor.execute(sql, params)
        result = cursor.fetchall()
    return {row[0]: dict(zip(out_names, row[1:], strict=True)) for row in result}
