"""One new row INSERTed with a statement compiled once per model.

Django compiles an INSERT each time it saves a new row: it quotes every
column and builds the text again, which cost the single-lead API create more
Python time than PostgreSQL took to run its two INSERTs (bench/capture.py
--profile). The text depends only on the model and the conflict clause, so it
is kept per process; each call only prepares the values, through the same
field methods as save() (pre_save sets auto_now fields on the instance).

A value that is an expression (F(), a function) is written into the text by
the ORM, so such a row is compiled the usual way. No model signals are sent:
the callers' models have no receivers, and a test holds them to that.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field, Model
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery


def insert_fields(model: type[Model]) -> list[Field]:
    """The columns an INSERT of a new row writes (not the key, not generated ones)."""
    return [f for f in model._meta.local_concrete_fields if not f.primary_key and not f.generated]


def insert_statement(obj: Model, *, ignore_conflicts: bool = False) -> tuple[str, list[Any]]:
    """The INSERT of `obj` RETURNING its primary key (with ON CONFLICT DO
    NOTHING when `ignore_conflicts`), and its values: one %s per insert_fields."""
    model = type(obj)
    fields = insert_fields(model)
    values = [f.pre_save(obj, True) for f in fields]
    if any(hasattr(value, "resolve_expression") for value in values):
        return _compile(obj, fields, ignore_conflicts)
    # The connection itself, not django.db.connection: each attribute read
    # through that proxy looks the connection up again, per field.
    connection = connections[DEFAULT_DB_ALIAS]
    sql = _text(model, ignore_conflicts, connection.vendor)
    return sql, [f.get_db_prep_save(v, connection) for f, v in zip(fields, values, strict=True)]


def insert_row(obj: Model, *, ignore_conflicts: bool = False) -> bool:
    """INSERT `obj`; sets its primary key and returns True, or False when
    `ignore_conflicts` and a unique constraint already held its values (no
    error and no savepoint: the transaction stays usable)."""
    sql, params = insert_statement(obj, ignore_conflicts=ignore_conflicts)
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(sql, params)
        return mark_inserted(obj, cursor.fetchone())


def mark_inserted(obj: Model, row: tuple | None) -> bool:
    """After an INSERT … RETURNING the key: the instance is saved (or, with no row, not)."""
    if row is None:
        return False
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = obj._state.db or DEFAULT_DB_ALIAS
    return True


@cache
def _text(model: type[Model], ignore_conflicts: bool, vendor: str) -> str:
    sql, params = _compile(model(), insert_fields(model), ignore_conflicts)
    if len(params) != len(insert_fields(model)):
        raise ValueError(f"{model.__name__}'s INSERT writes a value that is not a parameter")
    return sql


def _compile(obj: Model, fields: list[Field], ignore_conflicts: bool) -> tuple[str, list[Any]]:
    model = type(obj)
    query = InsertQuery(model, on_conflict=OnConflict.IGNORE if ignore_conflicts else None)
    query.insert_values(fields, [obj])
    compiler = query.get_compiler(using=DEFAULT_DB_ALIAS)
    compiler.returning_fields = [model._meta.pk]
    [(sql, params)] = compiler.as_sql()
    return sql, list(params)
