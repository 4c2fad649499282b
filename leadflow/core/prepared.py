"""A queryset's statement built and compiled once per process, run with each
call's values.

Building and compiling a query with a dozen annotations, EXISTS subqueries and
a filtered relation (the rep queue: pipeline.selectors.rep_queue) costs the ORM
more than PostgreSQL takes to run it (bench/rep_queue.py). Its SQL is the same on
every call; only a few values change: whose queue, the time, the tenant. So:

- `PreparedQuery(build, stand_ins)` builds the queryset once from stand-in
  values (a model instance with an impossible primary key, a datetime of 1901)
  inside a tenant scope of an impossible organization id, compiles it, and
  keeps the SQL, its parameters and the compiler (which knows the columns, the
  converters, the select_related and annotation layout);
- `run(limit=, offset=, **values)` puts each call's values where the stand-ins
  were, adds LIMIT/OFFSET, executes the SQL, and turns the rows into model
  instances as the ORM's own ModelIterable does (the same converters,
  `from_db`, related objects, annotations), or into the tuples (named ones
  too) of a `values_list()` query.

The tenant wall holds: the organization is the active django-scopes scope's,
read at each run; with no single organization in scope (scopes disabled, a list
of organizations, none) the query is built and run by the ORM as usual, and a
missing scope raises there as everywhere. A stand-in that does not reach the
statement as a parameter (the ORM inlined it, or the query does not use it)
stops the compilation: the statement would answer for the wrong values.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Callable
from typing import Any

from django.core.signals import setting_changed
from django.db import connections, router
from django.db.models import Model, QuerySet
from django.db.models.query import (  # type: ignore[attr-defined]  # ModelIterable's helper
    ModelIterable,
    NamedValuesListIterable,
    ValuesListIterable,
    get_related_populators,
)
from django.db.models.utils import create_namedtuple_class
from django_scopes import get_scope, scope

# No row has a negative id; no timestamp of ours is from 1901.
STAND_IN_ID = -7_340_033
STAND_IN_ORGANIZATION = -7_340_047
STAND_IN_TIME = dt.datetime(1901, 2, 3, 4, 5, 6, 789012, tzinfo=dt.UTC)
_ORGANIZATION = "organization scope"
_ALL: weakref.WeakSet[PreparedQuery] = weakref.WeakSet()


class _Compiled:
    """One connection's statement and what turns its rows into instances."""

    def __init__(self, queryset: QuerySet, connection, slots: dict[str, Any]) -> None:
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()  # fills compiler.select, klass_info, annotations
        self.sql = sql
        self.params = list(params)
        self.compiler = compiler
        # Which parameter takes which call value (by the stand-in it equals).
        self.slots: list[tuple[int, str]] = []
        for position, value in enumerate(self.params):
            for name, stand_in in slots.items():
                if type(value) is type(stand_in) and value == stand_in:
                    self.slots.append((position, name))
        missing = set(slots) - {name for _position, name in self.slots}
        inlined = [str(v) for v in slots.values() if type(v) is int and str(v) in sql]
        if missing or inlined:
            raise ValueError(f"stand-ins not passed as parameters: {sorted(missing)} {inlined}")
        self.instances = queryset._iterable_class is ModelIterable
        self.named = None
        if not self.instances:
            if queryset._iterable_class is NamedValuesListIterable:
                self.named = create_namedtuple_class(*queryset._fields)  # type: ignore[attr-defined]
            elif queryset._iterable_class is not ValuesListIterable:
                raise ValueError("model instances or values_list() tuples (named or not) only")
            return
        klass_info = compiler.klass_info
        self.model = klass_info["model"]
        fields = klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.init_list = [f[0].target.attname for f in compiler.select[self.start : self.end]]
        self.annotations = list(compiler.annotation_col_map.items())
        self.klass_info = klass_info

    def rows(self, connection, values: dict[str, Any], limit: int | None, offset: int) -> list:
        params = list(self.params)
        for position, name in self.slots:
            params[position] = values[name]
        sql = self.sql
        if limit is not None:
            sql, params = f"{sql} LIMIT %s OFFSET %s", [*params, limit, offset]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            fetched = cursor.fetchall()
        compiler, db = self.compiler, connection.alias
        if not self.instances:
            rows = compiler.results_iter([fetched], tuple_expected=True)
            if self.named is not None:
                return [tuple.__new__(self.named, row) for row in rows]
            return list(rows)
        populators = get_related_populators(self.klass_info, compiler.select, db)
        objects = []
        for row in compiler.results_iter([fetched]):
            obj = self.model.from_db(db, self.init_list, row[self.start : self.end])
            for populator in populators:
                populator.populate(row, obj)
            for name, position in self.annotations:
                setattr(obj, name, row[position])
            objects.append(obj)
        return objects


class PreparedQuery:
    """`build(**values)` -> a queryset of one tenant model; `stand_ins`: for each
    argument, a value of its kind (`PreparedQuery.instance(Membership)`, `STAND_IN_TIME`)."""

    def __init__(self, build: Callable[..., QuerySet], stand_ins: dict[str, Any]) -> None:
        self.build, self.stand_ins = build, stand_ins
        self._model: type[Model] | None = None
        self._compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        _ALL.add(self)

    @staticmethod
    def instance(model: type[Model]) -> Model:
        return model(pk=STAND_IN_ID)

    def run(self, *, limit: int | None = None, offset: int = 0, **values) -> list:
        """`list(build(**values)[offset:offset + limit])` (all rows when `limit` is
        None), from the compiled statement."""
        current = get_scope()
        organization = current.get("organization")
        if isinstance(organization, Model):
            organization = organization.pk
        if type(organization) is not int or not current.get("_enabled", True):
            queryset = self.build(**values)  # the ORM, as usual
            return list(queryset if limit is None else queryset[offset : offset + limit])
        if self._model is None:
            self._model = self._build_stand_in().model
        connection = connections[router.db_for_read(self._model)]
        compiled = self._compiled.get(connection)
        if compiled is None:
            compiled = self._compiled[connection] = _Compiled(
                self._build_stand_in(), connection, self._slots(connection, self.stand_ins)
            )
        slots = self._slots(connection, values)
        slots[_ORGANIZATION] = organization
        return compiled.rows(connection, slots, limit, offset)

    def _build_stand_in(self) -> QuerySet:
        with scope(organization=STAND_IN_ORGANIZATION):
            return self.build(**self.stand_ins)

    def _slots(self, connection, values: dict[str, Any]) -> dict[str, Any]:
        adapt = _adapter(connection)
        return {_ORGANIZATION: STAND_IN_ORGANIZATION} | {
            name: adapt(value) for name, value in values.items()
        }

    def forget(self) -> None:
        self._compiled = weakref.WeakKeyDictionary()


def _adapter(connection) -> Callable[[Any], Any]:
    """A call value as the ORM passes it to the driver (an instance as its key,
    a datetime as the backend's DateTimeField adaptation)."""

    def adapt(value):
        if isinstance(value, Model):
            return value.pk
        if isinstance(value, dt.datetime):
            return connection.ops.adapt_datetimefield_value(value)
        return value

    return adapt


def _forget_all(**kwargs) -> None:
    for prepared in list(_ALL):
        prepared.forget()


# Time zone and database settings change what the ORM would compile.
setting_changed.connect(_forget_all, dispatch_uid="leadflow-prepared-queries")
