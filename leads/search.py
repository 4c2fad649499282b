"""Lead search: the one meaning of "search leads" for the lead list, the API's `q`
and the nurture list's lead picker.

A lead matches a search when every term (whitespace-separated, at most
MAX_TERMS) is a case-insensitive substring of its email, first name, last name,
company name, or the name of the company it belongs to — exactly what Django's
`icontains` says on the database in use. Only how the rows are found differs:

- PostgreSQL: pg_trgm GIN indexes led by the organization (btree_gin), one on
  the lead's four columns and one on the company's name (migration 0005). The
  conditions are written as `icontains`, whose `UPPER(col::text) LIKE UPPER(…)`
  is the indexed expression; the company arm is `company_id = ANY(ARRAY(…))`, an
  init-plan the planner can OR with the index scans (an `IN (subquery)` arm would
  force a scan of the tenant). Terms under three characters have no trigram:
  the same SQL is still correct, just not narrowed by the index.
- SQLite: an FTS5 table with the trigram tokenizer (external content, kept in
  sync by triggers; `ensure_sqlite_index`) narrows the candidates of terms of
  three characters or more; the `icontains` conditions then decide, so the
  result equals plain `icontains` (the FTS index folds non-ASCII case too, so
  its candidates are a superset of what SQLite's LIKE matches).
"""

from __future__ import annotations

import sqlite3

from django.db import connection as default_connection
from django.db.models import F, Lookup, Q, QuerySet
from django.db.models.expressions import RawSQL

from leads.models import Company, Lead

MAX_TERMS = 5
LEAD_FIELDS = ("email", "first_name", "last_name", "company_name")
TRIGRAM = 3  # shorter terms have no trigram: no index narrows them

FTS_TABLE = "leads_lead_search"
_FTS_COLUMNS = ", ".join(LEAD_FIELDS)
_FTS_NEW = ", ".join(f"new.{c}" for c in LEAD_FIELDS)
_FTS_OLD = ", ".join(f"old.{c}" for c in LEAD_FIELDS)
# SQLite's trigram tokenizer arrived in 3.34; older builds search without an index.
SQLITE_TRIGRAM = sqlite3.sqlite_version_info >= (3, 34, 0)
SQLITE_TRIGGERS = {
    f"{FTS_TABLE}_ai": f"""CREATE TRIGGER {FTS_TABLE}_ai AFTER INSERT ON leads_lead BEGIN
        INSERT INTO {FTS_TABLE}(rowid, {_FTS_COLUMNS}) VALUES (new.id, {_FTS_NEW}); END""",
    f"{FTS_TABLE}_ad": f"""CREATE TRIGGER {FTS_TABLE}_ad AFTER DELETE ON leads_lead BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {_FTS_COLUMNS})
        VALUES ('delete', old.id, {_FTS_OLD}); END""",
    f"{FTS_TABLE}_au": f"""CREATE TRIGGER {FTS_TABLE}_au
        AFTER UPDATE OF id, {_FTS_COLUMNS} ON leads_lead BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {_FTS_COLUMNS})
        VALUES ('delete', old.id, {_FTS_OLD});
        INSERT INTO {FTS_TABLE}(rowid, {_FTS_COLUMNS}) VALUES (new.id, {_FTS_NEW}); END""",
}


class InArray(Lookup):
    """`col = ANY(ARRAY(subquery))` (PostgreSQL): the subquery runs once, as an
    init-plan, and its ids can drive an index scan inside a BitmapOr."""

    lookup_name = "in_array"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY(ARRAY{rhs})", [*lhs_params, *rhs_params]

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} IN {rhs}", [*lhs_params, *rhs_params]


def search_terms(q: str | None) -> list[str]:
    return (q or "").split()[:MAX_TERMS]


def term_q(term: str) -> Q:
    """One term's condition on Lead, shaped for the database's index."""
    companies = Company.objects.filter(name__icontains=term).values("pk")
    lead_fields = Q()
    for name in LEAD_FIELDS:
        lead_fields |= Q(**{f"{name}__icontains": term})
    if default_connection.vendor == "postgresql":
        return lead_fields | Q(InArray(F("company_id"), companies))
    if len(term) < TRIGRAM or not SQLITE_TRIGRAM:
        return lead_fields | Q(company__in=companies)
    phrase = '"' + term.replace('"', '""') + '"'
    candidates = RawSQL(
        f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s", (phrase,)
    )  # a superset of the lead-field matches; the icontains conditions decide
    return (Q(pk__in=candidates) & lead_fields) | Q(company__in=companies)


def search_leads(queryset: QuerySet[Lead], q: str | None) -> QuerySet[Lead]:
    """Leads of `queryset` matching every term of `q` (all of them if `q` is blank)."""
    for term in search_terms(q):
        queryset = queryset.filter(term_q(term))
    return queryset


def ensure_sqlite_index(connection) -> bool:
    """Create the FTS5 table and its triggers on SQLite if missing; rebuild the
    index when any trigger was missing (a table rebuild by a migration drops
    them). Returns whether anything was (re)built. Idempotent; run after every
    migrate (post_migrate) and by migration 0005."""
    if connection.vendor != "sqlite" or not SQLITE_TRIGRAM:
        return False
    if Lead._meta.db_table not in connection.introspection.table_names():
        return False  # leads migrated back to zero
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') AND name LIKE %s",
            [f"{FTS_TABLE}%"],
        )
        present = {row[0] for row in cursor.fetchall()}
        if FTS_TABLE in present and SQLITE_TRIGGERS.keys() <= present:
            return False
        if FTS_TABLE not in present:
            cursor.execute(
                f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5({_FTS_COLUMNS},"
                " content='leads_lead', content_rowid='id', tokenize='trigram')"
            )
        for name, sql in SQLITE_TRIGGERS.items():
            if name not in present:
                cursor.execute(sql)
        cursor.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
    return True


def drop_sqlite_index(connection) -> None:
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for name in SQLITE_TRIGGERS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        cursor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
