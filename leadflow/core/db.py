"""Set-based writes Django's ORM doesn't offer efficiently."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, router
from django.db.models import Field, IntegerField, Model
from django.db.models.lookups import In

UPDATE_BATCH = 500  # rows per statement: stays under SQLite's 32,766 parameters


def bulk_update_from_values(objs: Sequence[Model], fields: Sequence[str]) -> int:
    """UPDATE many rows with per-row values in one statement per batch:

        WITH v(pk, a, b) AS (VALUES (…), (…)) UPDATE t SET a = v.a, b = v.b FROM v WHERE t.id = v.pk

    Django's bulk_update builds a CASE WHEN per column per row, which grows
    quadratically with wide models; this is linear. Works on PostgreSQL and on
    SQLite >= 3.33 (UPDATE … FROM)."""
    if not objs:
        return 0
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    qn = connection.ops.quote_name
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    columns: list[Field] = [meta.get_field(name) for name in fields]  # type: ignore[misc]
    is_pg = connection.vendor == "postgresql"

    def placeholder(field) -> str:
        # PostgreSQL types VALUES columns from their first row; say what they are.
        return f"CAST(%s AS {field.cast_db_type(connection)})" if is_pg else "%s"

    row_sql = "(" + ", ".join(placeholder(f) for f in [pk, *columns]) + ")"
    names = ", ".join(qn(f"v_{f.column}") for f in [pk, *columns])
    assignments = ", ".join(f"{qn(f.column)} = v.{qn(f'v_{f.column}')}" for f in columns)
    table = qn(meta.db_table)
    updated = 0
    with connection.cursor() as cursor:
        for start in range(0, len(objs), UPDATE_BATCH):
            batch = objs[start : start + UPDATE_BATCH]
            params = []
            for obj in batch:
                for field in [pk, *columns]:
                    params.append(field.get_db_prep_save(getattr(obj, field.attname), connection))
            sql = (
                f"WITH v({names}) AS (VALUES {', '.join([row_sql] * len(batch))}) "
                f"UPDATE {table} SET {assignments} FROM v "
                f"WHERE {table}.{qn(pk.column)} = v.{qn(f'v_{pk.column}')}"
            )
            cursor.execute(sql, params)
            updated += cursor.rowcount
    return updated


def _unicode_lower(value):
    # Like the built-in: NULL stays NULL, numbers become their text.
    if value is None or isinstance(value, bytes):
        return value
    return str(value).lower()


def sqlite_unicode_lower(sender, connection, **kwargs) -> None:
    """SQLite's built-in LOWER folds ASCII only; text rules and searches compare
    values lower-cased in Python (str.lower) with LOWER(column), so both sides
    must fold the same way ("École" = "école"). PostgreSQL's LOWER folds Unicode
    under a UTF-8 LC_CTYPE."""
    if connection.vendor == "sqlite":
        connection.connection.create_function("LOWER", 1, _unicode_lower, deterministic=True)


@IntegerField.register_lookup
class IntegerFieldIn(In):
    """`pk__in=[…]` (e.g. a ModelMultipleChoiceField's posted ids) drops numbers
    the column can't hold, as Django's own `exact`/`lt`/`gt` lookups do: they
    match nothing, instead of overflowing the database driver."""

    def process_rhs(self, compiler, connection):
        if self.rhs_is_direct_value() and isinstance(self.rhs, list | tuple | set):
            low, high = connection.ops.integer_field_range(
                self.lhs.output_field.get_internal_type()
            )
            self.rhs = [
                v
                for v in self.rhs
                if not isinstance(v, int)
                or ((low is None or v >= low) and (high is None or v <= high))
            ]
        return super().process_rhs(compiler, connection)
