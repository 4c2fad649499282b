"""What a fit or gating rule may test, and how a condition becomes a Q object.

Fields: a lead field (`title`), a company field (`company.employee_count`), a
custom attribute (`custom.total_visits`), or `email_domain`. Every condition
compiles to a database expression; nothing is evaluated in Python per lead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import BooleanField, Expression, F, FloatField, Func, Q, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Lower, StrIndex, Substr

from leadflow.core.errors import LeadflowError
from scoring.models import Operator


class RuleError(LeadflowError):
    """A rule that cannot be compiled: unknown field, bad value for the operator."""


TEXT, NUMBER, BOOL = "text", "number", "bool"


@dataclass(frozen=True)
class FieldSpec:
    label: str
    path: str
    kind: str


FIELDS: dict[str, FieldSpec] = {
    "title": FieldSpec("Job title", "title", TEXT),
    "first_name": FieldSpec("First name", "first_name", TEXT),
    "last_name": FieldSpec("Last name", "last_name", TEXT),
    "email": FieldSpec("Email", "email", TEXT),
    "email_domain": FieldSpec("Email domain", "email", TEXT),
    "company_name": FieldSpec("Company name", "company_name", TEXT),
    "industry": FieldSpec("Industry", "industry", TEXT),
    "company_size": FieldSpec("Company size (employees)", "company_size", NUMBER),
    "country": FieldSpec("Country (ISO code)", "country", TEXT),
    "city": FieldSpec("City", "city", TEXT),
    "first_source": FieldSpec("First source", "first_source", TEXT),
    "latest_source": FieldSpec("Latest source", "latest_source", TEXT),
    "quality": FieldSpec("Data quality", "quality", TEXT),
    "email_opt_in": FieldSpec("Email opt-in", "email_opt_in", BOOL),
    "company.industry": FieldSpec("Company industry", "company__industry", TEXT),
    "company.employee_count": FieldSpec("Company employees", "company__employee_count", NUMBER),
    "company.annual_revenue": FieldSpec("Company revenue", "company__annual_revenue", NUMBER),
    "company.country": FieldSpec("Company country", "company__country", TEXT),
    "company.domain": FieldSpec("Company domain", "company__domain", TEXT),
}
CUSTOM_KEY = re.compile(r"^[a-z0-9_]{1,60}$")
NUMERIC_OPS = {Operator.GT, Operator.GTE, Operator.LT, Operator.LTE, Operator.BETWEEN}
LIST_OPS = {Operator.IN, Operator.NOT_IN}
NO_VALUE_OPS = {Operator.EMPTY, Operator.NOT_EMPTY}
TEXT_ONLY_OPS = {Operator.CONTAINS, Operator.NOT_CONTAINS, Operator.STARTS_WITH}


# A custom value written as text that reads as a plain decimal number (hosted
# forms post every field as text): "150", "-2.5", " 42 ". Not "1e3", not "0x10".
NUMERIC_TEXT = r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"


class JsonNumber(Func):
    """A custom attribute as a number: a JSON number, or text that reads as a
    plain decimal; otherwise NULL (never a cast error)."""

    output_field = FloatField()

    def __init__(self, key: str, **extra):
        if not CUSTOM_KEY.match(key):
            raise RuleError(f"Invalid custom attribute name {key!r}")
        self.key = key
        super().__init__(F("custom"), **extra)

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        k = self.key  # validated above: [a-z0-9_] only
        return (
            f"(CASE WHEN jsonb_typeof({sql} -> '{k}') = 'number' "
            f"OR ({sql} ->> '{k}') ~ %s "
            f"THEN ({sql} ->> '{k}')::double precision END)",
            [*params, *params, NUMERIC_TEXT, *params, *params],
        )

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        k = self.key
        value = f"json_extract({sql}, '$.{k}')"
        return (
            f"(CASE WHEN json_type({sql}, '$.{k}') IN ('integer', 'real') "
            f"OR (json_type({sql}, '$.{k}') = 'text' AND {value} REGEXP %s) "
            f"THEN CAST({value} AS REAL) END)",
            [*params, *params, *params, NUMERIC_TEXT, *params],
        )


def field_spec(field: str) -> FieldSpec:
    if field.startswith("custom."):
        key = field.removeprefix("custom.")
        if not CUSTOM_KEY.match(key):
            raise RuleError(
                f"Custom attribute names use lower-case letters, digits and _ (got {key!r})."
            )
        return FieldSpec(f"Custom: {key}", f"custom__{key}", "custom")
    try:
        return FIELDS[field]
    except KeyError:
        raise RuleError(f"Unknown field {field!r}.") from None


def to_number(value: Any) -> float:
    if isinstance(value, bool):
        raise RuleError("Expected a number.")
    try:
        return float(Decimal(str(value).strip()))
    except (InvalidOperation, ValueError):
        raise RuleError(f"{value!r} is not a number.") from None


def normalize_value(field: str, operator: str, value: Any) -> Any:
    """Validate and normalize a rule's value for its operator; raises RuleError."""
    spec = field_spec(field)
    if operator not in Operator.values:
        raise RuleError(f"Unknown operator {operator!r}.")
    if operator in NO_VALUE_OPS:
        return None
    if spec.kind == TEXT and operator in NUMERIC_OPS:
        raise RuleError(f"{spec.label} is text; use equals, contains, is one of…")
    if spec.kind == NUMBER and operator in TEXT_ONLY_OPS:
        raise RuleError(f"{spec.label} is a number; use equals, at least, between…")
    if spec.kind == BOOL:
        if operator not in (Operator.EQUALS, Operator.NOT_EQUALS):
            raise RuleError(f"{spec.label} is yes/no; use equals.")
        return str(value).strip().lower() in ("1", "true", "yes", "on")
    if operator == Operator.BETWEEN:
        items = value if isinstance(value, list) else str(value).split(",")
        if len(items) != 2:
            raise RuleError("Between needs two numbers: low, high.")
        low, high = sorted(to_number(v) for v in items)
        return [low, high]
    if operator in LIST_OPS:
        items = value if isinstance(value, list) else str(value).split(",")
        items = [str(v).strip() for v in items if str(v).strip()]
        if not items:
            raise RuleError("Give at least one value, separated by commas.")
        return items[:500]
    if operator in NUMERIC_OPS or spec.kind == NUMBER:
        return to_number(value)
    text = str(value if value is not None else "").strip()
    if not text:
        raise RuleError("A value is required for this operator.")
    return text[:500]


def _text_expr(field: str, spec: FieldSpec) -> Expression:
    if spec.kind == "custom":
        return CustomText(field.removeprefix("custom."), "custom")
    return F(spec.path)


def condition(field: str, operator: str, value: Any) -> Q:
    """A fit/gating condition as a Q on Lead."""
    spec = field_spec(field)
    value = normalize_value(field, operator, value)
    if field == "email_domain":
        return _email_domain(operator, value)
    numeric = operator in NUMERIC_OPS or (
        spec.kind == NUMBER and operator in (Operator.EQUALS, Operator.NOT_EQUALS)
    )
    if spec.kind == "custom":
        key = field.removeprefix("custom.")
        if numeric:
            return _compare(JsonNumber(key), operator, value)
        return _text(CustomText(key, "custom"), operator, value)
    if spec.kind == BOOL:
        q = Q(**{spec.path: value})
        return ~q if operator == Operator.NOT_EQUALS else q
    if spec.kind == NUMBER and operator in NO_VALUE_OPS:
        return Q(**{f"{spec.path}__isnull": operator == Operator.EMPTY})
    if spec.kind == NUMBER and operator in LIST_OPS:
        q = Q(**{f"{spec.path}__in": [to_number(v) for v in value]})
        return ~q if operator == Operator.NOT_IN else q
    if numeric:
        return _compare(F(spec.path), operator, value)
    return _text(_text_expr(field, spec), operator, value)


def _compare(expr: Expression, operator: str, value: Any) -> Q:
    def wrap(sql_op: str, rhs: Any) -> Q:
        return Q(_Cmp(expr, Value(rhs, output_field=FloatField()), sql_op))

    if operator == Operator.BETWEEN:
        return wrap(">=", value[0]) & wrap("<=", value[1])
    if operator == Operator.NOT_EQUALS:
        # Like "not in": an unknown number is not equal to anything.
        return ~wrap("=", value)
    ops = {
        Operator.GT: ">",
        Operator.GTE: ">=",
        Operator.LT: "<",
        Operator.LTE: "<=",
        Operator.EQUALS: "=",
    }
    if operator in ops:
        return wrap(ops[operator], value)
    if operator == Operator.EMPTY:
        return Q(_IsNull(expr))
    if operator == Operator.NOT_EMPTY:
        return ~Q(_IsNull(expr))
    raise RuleError(f"{operator} does not apply to numbers.")


class _Cmp(Func):
    """`lhs <op> rhs` where NULL counts as false (wrapped in COALESCE)."""

    output_field = BooleanField()

    def __init__(self, lhs, rhs, op: str):
        self.op = op
        super().__init__(lhs, rhs)

    def as_sql(self, compiler, connection, **extra):
        lhs, lp = compiler.compile(self.source_expressions[0])
        rhs, rp = compiler.compile(self.source_expressions[1])
        return f"COALESCE(({lhs}) {self.op} ({rhs}), FALSE)", [*lp, *rp]

    def as_sqlite(self, compiler, connection, **extra):
        lhs, lp = compiler.compile(self.source_expressions[0])
        rhs, rp = compiler.compile(self.source_expressions[1])
        return f"COALESCE(({lhs}) {self.op} ({rhs}), 0)", [*lp, *rp]


class _IsNull(Func):
    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(({sql}) IS NULL)", params


class CustomText(KeyTextTransform):
    """A custom attribute as text, the same on both databases: a JSON null is
    SQL NULL (empty). Django's SQLite version spells it 'null', like PostgreSQL
    spells booleans 'true'/'false' (which stay)."""

    def as_sqlite(self, compiler, connection):
        sql, params = super().as_sqlite(compiler, connection)
        return sql.replace("'null',", "", 1).replace(",'null'", "", 1), params


def _text(expr: Expression, operator: str, value: Any) -> Q:
    """Text comparisons are case-insensitive; NULL behaves like ''."""
    from django.db.models.functions import Coalesce

    alias = Lower(Coalesce(expr, Value("")))
    if operator == Operator.EMPTY:
        return Q(_TextOp(alias, "eq", ""))
    if operator == Operator.NOT_EMPTY:
        return ~Q(_TextOp(alias, "eq", ""))
    if operator in (Operator.IN, Operator.NOT_IN):
        q = Q(_TextIn(alias, [v.lower() for v in value]))
        return ~q if operator == Operator.NOT_IN else q
    needle = str(value).lower()
    kinds = {
        Operator.EQUALS: "eq",
        Operator.NOT_EQUALS: "ne",
        Operator.CONTAINS: "contains",
        Operator.NOT_CONTAINS: "not_contains",
        Operator.STARTS_WITH: "startswith",
    }
    if operator not in kinds:
        raise RuleError(f"{operator} does not apply to text.")
    return Q(_TextOp(alias, kinds[operator], needle))


class _TextOp(Func):
    """Boolean text test with LIKE patterns escaped (user input is data, not syntax)."""

    output_field = BooleanField()

    def __init__(self, expr, kind: str, needle: str):
        self.kind = kind
        self.needle = needle
        super().__init__(expr)

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        escaped = self.needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        if self.kind == "eq":
            return f"(({sql}) = %s)", [*params, self.needle]
        if self.kind == "ne":
            return f"(({sql}) <> %s)", [*params, self.needle]
        pattern = {"contains": f"%{escaped}%", "not_contains": f"%{escaped}%"}.get(
            self.kind, f"{escaped}%"
        )
        negate = "NOT " if self.kind == "not_contains" else ""
        return f"({negate}({sql}) LIKE %s ESCAPE '\\')", [*params, pattern]


class _TextIn(Func):
    output_field = BooleanField()

    def __init__(self, expr, values: list[str]):
        self.values = values
        super().__init__(expr)

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        marks = ", ".join(["%s"] * len(self.values))
        return f"(({sql}) IN ({marks}))", [*params, *self.values]


def _email_domain(operator: str, value: Any) -> Q:
    domains = value if isinstance(value, list) else [value]
    domains = [str(d).lower().lstrip("@") for d in domains if d]
    if operator in (Operator.EQUALS, Operator.IN, Operator.NOT_EQUALS, Operator.NOT_IN):
        q = Q()
        for d in domains:
            q |= Q(email__iendswith="@" + d)
        return ~q if operator in (Operator.NOT_EQUALS, Operator.NOT_IN) else q
    # Text operators test the part after the @ ("startswith gmail" means gmail.*).
    domain = Substr(F("email"), StrIndex(F("email"), Value("@")) + Value(1))
    return _text(domain, operator, value)
