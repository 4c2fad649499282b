"""Keyset pagination with a capped count, for lists that can hold a million rows.

A page is found from the sort key of the row before it (`?cursor=`), not by an
OFFSET, so page 2,000 costs what page 1 does; and the total is counted only up
to COUNT_CAP rows ("Showing 1–50 of 1,000+"), so a page view never counts the
whole tenant. Below the cap the count is exact. The cap is 1,000, not 10,000:
counting the matches of a search visits each matching row in the table, and at
1,000,000 leads 10,000 scattered matches took 60 ms (bench/lead_list.py), more
than the rest of the page's SQL together. One query per page: the rows (one
more than the page, to know whether a next page exists), each carrying the
capped count as a scalar subquery PostgreSQL runs once (an InitPlan): no second
round trip, no second statement to build.

The ordering is the queryset's (plain field names, `-` for descending), with the
primary key appended as a tie-breaker. NULLs sort as the largest value on every
database (PostgreSQL's default), so the same cursor works on SQLite too.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import EmptyResultSet, FieldDoesNotExist, ValidationError
from django.db.models import F, Model, Q, QuerySet, Value
from django.db.models.expressions import Expression, RawSQL

COUNT_CAP = 1_000
CURSOR_PARAM = "cursor"
TOTAL = "keyset_capped_total"  # the annotation each row of a page carries


@dataclass(frozen=True)
class _Key:
    name: str
    descending: bool
    nullable: bool

    def order_by(self, *, reverse: bool = False):
        descending = self.descending != reverse
        if not self.nullable:
            return f"-{self.name}" if descending else self.name
        # NULL is the largest value: last going up, first going down.
        if descending:
            return F(self.name).desc(nulls_first=True)
        return F(self.name).asc(nulls_last=True)

    def after(self, value: Any, *, reverse: bool = False) -> Q:
        """Rows whose key comes after `value` in this direction."""
        descending = self.descending != reverse
        if value is None:  # NULL is largest
            return Q(**{f"{self.name}__isnull": False}) if descending else Q(pk__in=[])
        beyond = Q(**{f"{self.name}__{'lt' if descending else 'gt'}": value})
        if self.nullable and not descending:
            beyond |= Q(**{f"{self.name}__isnull": True})
        return beyond

    def equal(self, value: Any) -> Q:
        if value is None:
            return Q(**{f"{self.name}__isnull": True})
        return Q(**{self.name: value})


def _keys(queryset: QuerySet) -> list[_Key]:
    meta = queryset.model._meta
    keys: list[_Key] = []
    for item in queryset.query.order_by or meta.ordering or ():
        if not isinstance(item, str) or item == "?":
            raise ValueError(f"keyset pagination orders by field names, not {item!r}")
        name = item.lstrip("-")
        concrete = meta.pk if name == "pk" else meta.get_field(name)
        if concrete.is_relation:
            name = concrete.attname
        keys.append(_Key(name, item.startswith("-"), concrete.null))
        if concrete.primary_key or (concrete.unique and not concrete.null):
            return keys  # already unique: no tie-breaker needed
    descending = keys[-1].descending if keys else False
    keys.append(_Key("pk", descending, False))
    return keys


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Model):
        return value.pk
    return value


def _signature(keys: list[_Key]) -> str:
    return ",".join(("-" if k.descending else "") + k.name for k in keys)


@dataclass
class _Cursor:
    backwards: bool
    start: int  # 1-based position of the page's first row (for display)
    values: list[Any]

    def encode(self, keys: list[_Key]) -> str:
        raw = {
            "o": _signature(keys),
            "d": "p" if self.backwards else "n",
            "s": self.start,
            "v": [_jsonable(v) for v in self.values],
        }
        text = json.dumps(raw, separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, model: type[Model], keys: list[_Key]) -> _Cursor | None:
        """The cursor, or None when it is malformed or made for another ordering."""
        try:
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            if raw["o"] != _signature(keys) or len(raw["v"]) != len(keys):
                return None
            start = int(raw["s"])
            values = []
            for key, value in zip(keys, raw["v"], strict=True):
                model_field = model._meta.pk if key.name == "pk" else _field(model, key.name)
                values.append(None if value is None else model_field.to_python(value))
        except (binascii.Error, ValueError, TypeError, KeyError, ValidationError):
            return None
        except FieldDoesNotExist:  # pragma: no cover - the keys come from the model
            return None
        return cls(raw["d"] == "p", max(start, 1), values)


def _field(model: type[Model], attname: str):
    for candidate in model._meta.concrete_fields:
        if candidate.attname == attname:
            return candidate.target_field if candidate.is_relation else candidate  # type: ignore[attr-defined]
    raise FieldDoesNotExist(attname)


def _beyond(keys: list[_Key], values: list[Any], *, reverse: bool) -> Q:
    """Rows after `values` in the keys' order (before them with reverse)."""
    condition = Q(pk__in=[])
    prefix = Q()
    for key, value in zip(keys, values, strict=True):
        condition |= prefix & key.after(value, reverse=reverse)
        prefix &= key.equal(value)
    return condition


@dataclass
class KeysetPage:
    """What a list template needs: iterate it for the rows; `count_display`,
    `start_index`–`end_index`, and the previous/next/first query strings."""

    object_list: list[Any]
    per_page: int
    start_index: int
    count: int  # exact up to the cap; `capped` says there are more
    capped: bool
    has_previous: bool
    has_next: bool
    previous_cursor: str | None = None  # None with has_previous: the first page
    next_cursor: str | None = None
    base_query: str = ""  # the other GET parameters, url-encoded
    cap: int = COUNT_CAP

    def __iter__(self) -> Iterator[Any]:
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)

    def __bool__(self) -> bool:
        return bool(self.object_list)

    @property
    def end_index(self) -> int:
        return self.start_index + len(self.object_list) - 1

    @property
    def count_display(self) -> str:
        """The total as a person reads it: "1,000+" past the cap."""
        return f"{self.cap:,}+" if self.capped else f"{self.count:,}"

    @property
    def range_total(self) -> str:
        """The total after "Showing 51–100 of": past the cap, the rows shown so far."""
        if self.capped and self.end_index >= self.cap:
            return f"more than {self.end_index:,}"
        return self.count_display

    @property
    def has_other_pages(self) -> bool:
        return self.has_previous or self.has_next

    def _query(self, cursor: str | None) -> str:
        parts = [p for p in (self.base_query, cursor and f"{CURSOR_PARAM}={cursor}") if p]
        return "?" + "&".join(parts)

    @property
    def first_query(self) -> str:
        return self._query(None)

    @property
    def previous_query(self) -> str:
        return self._query(self.previous_cursor)

    @property
    def next_query(self) -> str:
        return self._query(self.next_cursor)


def capped_count(queryset: QuerySet, cap: int = COUNT_CAP) -> int:
    """COUNT(*) of at most cap + 1 rows: a number above `cap` means "more than cap"."""
    return queryset.order_by().values("pk")[: cap + 1].count()  # no annotations


def capped_total(queryset: QuerySet, cap: int = COUNT_CAP) -> Expression:
    """`capped_count` as an expression: a scalar subquery for the page's own query."""
    try:
        sql, params = queryset.order_by().values("pk")[: cap + 1].query.sql_with_params()
    except EmptyResultSet:  # a filter nothing can match (an empty `__in`): no rows
        return Value(0)
    return RawSQL(f"SELECT COUNT(*) FROM ({sql}) AS capped", params)


def _with_total(queryset: QuerySet, cap: int) -> QuerySet:
    """The queryset with its capped total on every row (instances, dicts and named
    tuples of values()/values_list(); not flat ones, which have no room for it)."""
    counted = queryset.annotate(**{TOTAL: capped_total(queryset, cap)})
    if queryset._fields:  # type: ignore[attr-defined]  # values(): the rows name it too
        counted._fields = (*queryset._fields, TOTAL)  # type: ignore[attr-defined]
    return counted


def first_page_query(queryset: QuerySet, cap: int = COUNT_CAP) -> QuerySet:
    """What keyset_page reads for a first page (sliced to its size + 1): the rows
    in key order, each carrying the capped total."""
    keys = _keys(queryset)
    return _with_total(queryset, cap).order_by(*(k.order_by() for k in keys))


def keyset_page(
    queryset: QuerySet,
    *,
    per_page: int,
    cursor: str | None = None,
    base_query: str = "",
    cap: int = COUNT_CAP,
    first_rows: Callable[[int], list] | None = None,
) -> KeysetPage:
    """The page of `queryset` (ordered by field names) that `cursor` points at.
    `first_rows(n)`: the first n rows of `first_page_query(queryset, cap)`, when
    the caller has them cheaper than the ORM (a statement compiled once)."""
    keys = _keys(queryset)
    decoded = _Cursor.decode(cursor, queryset.model, keys) if cursor else None
    if decoded is None and first_rows is not None:  # nothing to build here
        rows = first_rows(per_page + 1)
    else:
        counted = _with_total(queryset, cap)
        ordered = counted.order_by(*(k.order_by() for k in keys))
    if decoded is None:
        if first_rows is None:
            rows = list(ordered[: per_page + 1])
        start, has_previous, has_next = 1, False, len(rows) > per_page
        rows = rows[:per_page]
    elif decoded.backwards:
        backwards = counted.filter(_beyond(keys, decoded.values, reverse=True)).order_by(
            *(k.order_by(reverse=True) for k in keys)
        )
        rows = list(backwards[: per_page + 1])
        has_previous, has_next = len(rows) > per_page, True
        rows = rows[:per_page][::-1]
        start = decoded.start if has_previous else 1
    else:
        rows = list(ordered.filter(_beyond(keys, decoded.values, reverse=False))[: per_page + 1])
        start, has_previous, has_next = decoded.start, True, len(rows) > per_page
        rows = rows[:per_page]
    if not rows and decoded is not None:  # a cursor past the end: show the first page
        return keyset_page(
            queryset, per_page=per_page, base_query=base_query, cap=cap, first_rows=first_rows
        )
    if has_next:
        total = rows[0][TOTAL] if isinstance(rows[0], dict) else getattr(rows[0], TOTAL)
        count, capped = min(total, cap), total > cap
    else:  # the last page: the rows before it and its own are all there is
        count, capped = start - 1 + len(rows), False

    def values(row: Any) -> list[Any]:
        return [getattr(row, k.name) for k in keys]

    previous_cursor = next_cursor = None
    if has_previous and start - per_page > 1:
        previous_cursor = _Cursor(True, start - per_page, values(rows[0])).encode(keys)
    if has_next:
        next_cursor = _Cursor(False, start + len(rows), values(rows[-1])).encode(keys)
    return KeysetPage(
        object_list=rows,
        per_page=per_page,
        start_index=start,
        count=count,
        capped=capped,
        has_previous=has_previous,
        has_next=has_next,
        previous_cursor=previous_cursor,
        next_cursor=next_cursor,
        base_query=base_query,
        cap=cap,
    )


def request_page(
    request,
    queryset: QuerySet,
    *,
    per_page: int,
    cap: int = COUNT_CAP,
    first_rows: Callable[[int], list] | None = None,
) -> KeysetPage:
    """The page of `queryset` a list view's request asks for (`?cursor=`); its links
    keep the request's other parameters, except a page number of an older link."""
    query = request.GET.copy()
    query.pop(CURSOR_PARAM, None)
    query.pop("page", None)
    return keyset_page(
        queryset,
        per_page=per_page,
        cursor=request.GET.get(CURSOR_PARAM),
        base_query=query.urlencode(),
        cap=cap,
        first_rows=first_rows,
    )
