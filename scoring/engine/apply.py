"""The scoring engine's write seam: any SELECT of new scores (the compiled
rules of scoring.engine.rules, or another scorer producing the same columns)
is stored the same way — a temporary table, a ScoreHistory row where band,
grade or MQL eligibility changed, the lead's score columns, and the MQL
crossings handed to the pipeline's hooks.

The SELECT must yield: lid, new_fit, new_eng, new_total, new_grade, new_band,
new_gate, new_mql, new_breakdown, old_grade, old_band, old_mql.

Two ways to store them, with the same INSERT and UPDATE: `apply_scores` for
sets (imports, tenant rescores: through a temporary table, analyzed when the
whole tenant is scored), and `apply_lead_scores` for a few leads (a capture, an
API call, an activity: on PostgreSQL one statement of data-modifying CTEs, with
the configuration from scoring.engine.cache, checked by version in that same
statement). `rescore` and `rescore_leads` are their entry points.

A new lead is scored by the statement that inserts it when it can be
(`new_lead_scores`, answering leadflow.core.hooks.new_lead_scores: the same
compiled SELECT over the lead not inserted yet, the same columns, history row
and version check), so it is written once instead of inserted and updated;
`rescore_after_ingest` fires its crossing (`scored_at_insert`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from leadflow.core import hooks
from leadflow.core.server_prepared import preparing_cursor, server_prepared
from leads.models import Activity, Lead
from leads.services.ingest import note_leads_changed
from scoring.engine.cache import cached_config, reload_config
from scoring.engine.rules import (
    Config,
    few_leads_sql,
    load_config,
    new_lead_sql,
    scores_sql,
    sql_timestamp,
)
from scoring.models import ScoringSettings


@dataclass
class RescoreResult:
    scored: int = 0
    crossed_up: list[int] = field(default_factory=list)
    crossed_down: list[int] = field(default_factory=list)


TEMP = "_lead_scores"

# The columns every scores SELECT yields, and the two writes both paths share
# (each followed by "FROM <scores> s WHERE ...").
COLUMNS = [
    "lid", "new_fit", "new_eng", "new_total", "new_grade", "new_band", "new_gate", "new_mql",
    "new_breakdown", "old_grade", "old_band", "old_mql",
]  # fmt: skip
CHANGED = "s.new_grade <> s.old_grade OR s.new_band <> s.old_band OR s.new_mql <> s.old_mql"
HISTORY_INSERT = (
    "INSERT INTO scoring_scorehistory (organization_id, lead_id, at, score, fit_score,"
    " engagement_score, grade, band, mql_eligible, previous_grade, previous_band,"
    " previous_mql_eligible)"
    " SELECT %s, s.lid, %s, s.new_total, s.new_fit, s.new_eng, s.new_grade, s.new_band,"
    " s.new_mql, s.old_grade, s.old_band, s.old_mql"
)
LEAD_UPDATE = (
    "UPDATE leads_lead SET fit_score = s.new_fit, engagement_score = s.new_eng,"
    " score = s.new_total, grade = s.new_grade, band = s.new_band,"
    " mql_eligible = s.new_mql, gating_reason = s.new_gate,"
    " score_breakdown = s.new_breakdown, scored_at = %s,"
    " mql_changed_at = CASE WHEN s.new_mql <> s.old_mql THEN %s"
    " ELSE leads_lead.mql_changed_at END"
)


def rescore(
    *,
    organization_id: int,
    lead_ids: Iterable[int] | None = None,
    id_range: tuple[int, int] | None = None,
    now: datetime | None = None,
    config: Config | None = None,
) -> RescoreResult:
    """Recompute and store the scores of some (or all) leads of the active organization.

    Must run inside the organization's scope; one transaction."""
    now = now or timezone.now()
    config = config or load_config(organization_id=organization_id)
    leads = Lead.objects.all()
    if lead_ids is not None:
        lead_ids = list(lead_ids)
        if not lead_ids:
            return RescoreResult()
        leads = leads.filter(pk__in=lead_ids)
    if id_range is not None:
        leads = leads.filter(pk__gte=id_range[0], pk__lt=id_range[1])
    activities = Activity.objects.all()
    if lead_ids is not None:
        activities = activities.filter(lead_id__in=list(lead_ids))
    if id_range is not None:
        activities = activities.filter(lead_id__gte=id_range[0], lead_id__lt=id_range[1])
    sql, params = scores_sql(config, leads, now, activities=activities)
    return apply_scores(
        organization_id=organization_id,
        select=(sql, params),
        now=now,
        whole_tenant=lead_ids is None,
    )


# At most this many leads are scored by the few-lead path (no temporary table,
# cached configuration); more go the set-based way.
FEW_LEADS = 100
_STALE_RETRIES = 2


def rescore_leads(
    *, organization_id: int, lead_ids: Iterable[int], now: datetime | None = None
) -> RescoreResult:
    """Rescore a few leads (a capture, an API call, an activity) with the
    organization's cached configuration: one SELECT over those leads and their
    activities, stored through `apply_lead_scores` — the same compiled rules and
    the same writes as `rescore`, whose set-based path takes larger sets.

    Must run inside the organization's scope; joins the caller's transaction."""
    lead_ids = sorted(set(lead_ids))
    if not lead_ids:
        return RescoreResult()
    if len(lead_ids) > FEW_LEADS:
        return rescore(organization_id=organization_id, lead_ids=lead_ids, now=now)
    now = now or timezone.now()
    if connection.vendor == "postgresql":
        version, config = cached_config(organization_id=organization_id)  # checked on write
    elif (stored := _stored_version(organization_id)) is not None:
        version, config = cached_config(organization_id=organization_id, version=stored)
    else:
        version, config = reload_config(organization_id=organization_id)
    for _attempt in range(_STALE_RETRIES):
        select = few_leads_sql(config, lead_ids, now, bound=server_prepared())
        result = apply_lead_scores(
            organization_id=organization_id, select=select, now=now, config_version=version
        )
        if result is not None:
            return result
        version, config = reload_config(organization_id=organization_id)
    # Changed again meanwhile (a burst of edits): score with what is stored now.
    return rescore(organization_id=organization_id, lead_ids=lead_ids, now=now)


# new_lead_scores: the lead columns a scored insert writes (as LEAD_UPDATE does).
_SCORED_COLUMNS = {
    "fit_score": "sc.new_fit",
    "engagement_score": "sc.new_eng",
    "score": "sc.new_total",
    "grade": "sc.new_grade",
    "band": "sc.new_band",
    "mql_eligible": "sc.new_mql",
    "gating_reason": "sc.new_gate",
    "score_breakdown": "sc.new_breakdown",
    "scored_at": "ok.at",
    "mql_changed_at": "CASE WHEN sc.new_mql <> sc.old_mql THEN ok.at ELSE nl.mql_changed_at END",
}


def new_lead_scores(organization_id: int, now: datetime) -> hooks.NewLeadScores | None:
    """leadflow.core.hooks.new_lead_scores: the statement that inserts a new
    lead also scores it, with the cached configuration (the same compiled
    rules as `rescore_leads`). Its columns take the scores only if the stored
    configuration version is still the cached one (`ok`), else its own
    defaults: `rescore_after_ingest` then scores it the usual way. None (score
    after the insert) off PostgreSQL or when new_lead_sql can't read the lead
    unborn."""
    if connection.vendor != "postgresql":
        return None
    version, config = cached_config(organization_id=organization_id)
    unborn = new_lead_sql(config, now)
    if unborn is None:
        return None
    sql, times = unborn
    stamp = connection.ops.adapt_datetimefield_value(now)
    return hooks.NewLeadScores(
        ctes=(
            f"sc AS MATERIALIZED ({sql}), ok AS (SELECT %s::timestamptz AS at"
            " FROM scoring_scoringsettings WHERE organization_id = %s AND config_version = %s)"
        ),
        params=[*times, stamp, organization_id, version],
        joins="LEFT JOIN sc ON true LEFT JOIN ok ON true",
        columns={
            column: f"CASE WHEN ok.at IS NULL THEN nl.{column} ELSE {value} END"
            for column, value in _SCORED_COLUMNS.items()
        },
        after=(
            f"h AS ({HISTORY_INSERT} FROM sc s JOIN l ON l.id = s.lid"
            f" WHERE ({CHANGED}) AND EXISTS (SELECT 1 FROM ok))"
        ),
        after_params=[organization_id, stamp],
        result="EXISTS (SELECT 1 FROM ok), (SELECT new_mql FROM sc), (SELECT old_mql FROM sc)",
    )


def scored_at_insert(organization_id: int, scored: dict[int, tuple]) -> list[int]:
    """After new_lead_scores: hand the crossings of the leads it scored to the
    pipeline, as a rescore does; returns the leads it could not score."""
    result = RescoreResult()
    missed = []
    for lead_id, (applied, new_mql, old_mql) in scored.items():
        if not applied:
            missed.append(lead_id)
            continue
        result.scored += 1
        if bool(new_mql) != bool(old_mql):
            (result.crossed_up if new_mql else result.crossed_down).append(lead_id)
    _fire_crossings(organization_id, result)
    return missed


def _stored_version(organization_id: int) -> int | None:
    return (
        ScoringSettings.objects.filter(organization_id=organization_id)
        .values_list("config_version", flat=True)
        .first()
    )


def apply_scores(
    *, organization_id: int, select: tuple[str, list], now: datetime, whole_tenant: bool = False
) -> RescoreResult:
    """Store the scores a SELECT yields (see the module docstring). One transaction."""
    sql, params = select
    stamp = connection.ops.adapt_datetimefield_value(now)
    result = RescoreResult()
    with transaction.atomic(), connection.cursor() as cursor:
        if whole_tenant and connection.vendor == "postgresql":
            # On a tenant-wide pass, JIT-compiling the wide expression list
            # costs more than it saves (a few leads never reach the JIT cost).
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(f"DROP TABLE IF EXISTS {TEMP}")
        cursor.execute(f"CREATE TEMPORARY TABLE {TEMP} AS {sql}", params)
        if whole_tenant and connection.vendor == "postgresql":
            # Temporary tables get no statistics from autovacuum; without them
            # the UPDATE's join to leads is planned for a handful of rows.
            cursor.execute(f"ANALYZE {TEMP}")
        cursor.execute(f"{HISTORY_INSERT} FROM {TEMP} s WHERE {CHANGED}", [organization_id, stamp])
        cursor.execute(f"{LEAD_UPDATE} FROM {TEMP} s WHERE leads_lead.id = s.lid", [stamp, stamp])
        result.scored = cursor.rowcount
        cursor.execute(f"SELECT s.lid, s.new_mql FROM {TEMP} s WHERE s.new_mql <> s.old_mql")
        for lead_id, mql in cursor.fetchall():
            (result.crossed_up if mql else result.crossed_down).append(lead_id)
        cursor.execute(f"DROP TABLE {TEMP}")
        _fire_crossings(organization_id, result)
    return result


def _fire_crossings(organization_id: int, result: RescoreResult) -> None:
    if result.crossed_up or result.crossed_down:
        # The pipeline may move and route these leads: an ingest reads them again.
        note_leads_changed(result.crossed_up + result.crossed_down)
        hooks.mql_crossing.call(organization_id, result.crossed_up, result.crossed_down)


def apply_lead_scores(
    *, organization_id: int, select: tuple[str, list | None], now: datetime, config_version: int
) -> RescoreResult | None:
    """Store the scores a SELECT over a few leads yields, as `apply_scores` does
    (same history rows, same lead columns, same MQL crossing hooks), without a
    temporary table — on PostgreSQL in one statement.

    Writes only if the organization's stored configuration version is still
    `config_version` (the version the SELECT's rules were compiled from);
    otherwise writes nothing and returns None. Runs in the caller's
    transaction (no savepoint of its own)."""
    sql, params = select
    stamp = connection.ops.adapt_datetimefield_value(now)
    result = RescoreResult()
    prepared = params is not None and server_prepared()
    cursor_of = preparing_cursor if prepared else connection.cursor
    with transaction.atomic(savepoint=False), cursor_of() as cursor:
        if connection.vendor == "postgresql":
            # Data-modifying CTEs: the history INSERT and the lead UPDATE run only
            # when the version check holds; the outer SELECT reports crossings.
            rest = (
                " ok AS (SELECT 1 FROM scoring_scoringsettings"
                " WHERE organization_id = %s AND config_version = %s),"
                f" h AS ({HISTORY_INSERT} FROM s WHERE ({CHANGED}) AND EXISTS (SELECT 1 FROM ok)),"
                f" u AS ({LEAD_UPDATE} FROM s WHERE leads_lead.id = s.lid"
                " AND EXISTS (SELECT 1 FROM ok) RETURNING leads_lead.id)"
                " SELECT s.lid, s.new_mql, s.old_mql, EXISTS (SELECT 1 FROM ok) FROM s"
            )
            values = [organization_id, config_version, organization_id, stamp, stamp, stamp]
            if params is None:
                # A complete SELECT (few_leads_sql): the rest is written in too,
                # so the driver has no long text to scan for placeholders.
                ids = (organization_id, config_version, organization_id)
                written = [str(int(v)) for v in ids] + [sql_timestamp(now)] * 3
                cursor.execute(f"WITH s AS MATERIALIZED ({sql}), {rest % tuple(written)}")
            else:
                cursor.execute(f"WITH s AS MATERIALIZED ({sql}), {rest}", [*params, *values])
            rows = cursor.fetchall()
            if rows and not rows[0][3]:
                return None
            crossings = [(lid, new, old) for lid, new, old, _ in rows]
        else:
            cursor.execute(
                "SELECT config_version FROM scoring_scoringsettings WHERE organization_id = %s",
                [organization_id],
            )
            stored = cursor.fetchone()
            if stored is None or stored[0] != config_version:
                return None
            crossings = _write_rows(cursor, organization_id, sql, params or [], stamp)
        result.scored = len(crossings)
        for lead_id, new_mql, old_mql in crossings:
            if bool(new_mql) != bool(old_mql):
                (result.crossed_up if new_mql else result.crossed_down).append(lead_id)
        _fire_crossings(organization_id, result)
    return result


def _write_rows(cursor, organization_id: int, sql: str, params: list, stamp) -> list[tuple]:
    """Without data-modifying CTEs (SQLite): read the new scores, then write them
    with the same INSERT and UPDATE over a VALUES list of those rows."""
    cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM ({sql}) s", params)
    rows = cursor.fetchall()
    if not rows:
        return []
    values = ", ".join(["(" + ", ".join(["%s"] * len(COLUMNS)) + ")"] * len(rows))
    flat = [v for row in rows for v in row]
    # column1..N are SQLite's names for the columns of a VALUES list.
    named = ", ".join(f"column{i + 1} AS {c}" for i, c in enumerate(COLUMNS))
    source = f"(SELECT {named} FROM (VALUES {values})) s"
    history = f"{HISTORY_INSERT} FROM {source} WHERE {CHANGED}"
    cursor.execute(history, [organization_id, stamp, *flat])
    update = f"{LEAD_UPDATE} FROM {source} WHERE leads_lead.id = s.lid"
    cursor.execute(update, [stamp, stamp, *flat])
    index = {c: i for i, c in enumerate(COLUMNS)}
    return [(r[index["lid"]], r[index["new_mql"]], r[index["old_mql"]]) for r in rows]
