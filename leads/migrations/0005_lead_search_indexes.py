"""Indexes for lead search (leads/search.py).

PostgreSQL: pg_trgm and btree_gin, then trigram GIN indexes led by the
organization on the expressions `icontains` compares (UPPER(col::text)), built
CONCURRENTLY so a large table keeps taking writes. SQLite: the FTS5 trigram
table and its triggers. Each part does nothing on the other database.
"""

from django.contrib.postgres.operations import BtreeGinExtension, TrigramExtension
from django.db import migrations

LEAD_INDEX = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS lead_search_trgm ON leads_lead USING gin"
    " (organization_id, UPPER(email::text) gin_trgm_ops, UPPER(first_name::text) gin_trgm_ops,"
    " UPPER(last_name::text) gin_trgm_ops, UPPER(company_name::text) gin_trgm_ops)"
)
COMPANY_INDEX = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS company_name_trgm ON leads_company USING gin"
    " (organization_id, UPPER(name::text) gin_trgm_ops)"
)


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(LEAD_INDEX)
            cursor.execute(COMPANY_INDEX)
    else:
        from leads.search import ensure_sqlite_index

        ensure_sqlite_index(connection)


def backwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX CONCURRENTLY IF EXISTS lead_search_trgm")
            cursor.execute("DROP INDEX CONCURRENTLY IF EXISTS company_name_trgm")
    else:
        from leads.search import drop_sqlite_index

        drop_sqlite_index(connection)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("leads", "0004_importjob_heartbeat")]

    operations = [
        TrigramExtension(),
        BtreeGinExtension(),
        migrations.RunPython(forwards, backwards),
    ]
