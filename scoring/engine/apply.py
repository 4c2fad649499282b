"""The scoring engine's write seam: any SELECT of new scores (the compiled
rules of scoring.engine.rules, or another scorer producing the same columns)
is stored the same way — a temporary table, a ScoreHistory row where band,
grade or MQL eligibility changed, the lead's score columns, and the MQL
crossings handed to the pipeline's hooks.

The SELECT must yield: lid, new_fit, new_eng, new_total, new_grade, new_band,
new_gate, new_mql, new_breakdown, old_grade, old_band, old_mql.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from leads.models import Activity, Lead
from scoring.engine.rules import Config, load_config, scores_sql


@dataclass
class RescoreResult:
    scored: int = 0
    crossed_up: list[int] = field(default_factory=list)
    crossed_down: list[int] = field(default_factory=list)


# The pipeline registers callable(organization_id, up_ids, down_ids) here.
mql_crossing_hooks: list[Callable[[int, list[int], list[int]], None]] = []

TEMP = "_lead_scores"


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
        changed = "s.new_grade <> s.old_grade OR s.new_band <> s.old_band OR s.new_mql <> s.old_mql"
        cursor.execute(
            "INSERT INTO scoring_scorehistory (organization_id, lead_id, at, score, fit_score,"
            " engagement_score, grade, band, mql_eligible, previous_grade, previous_band,"
            " previous_mql_eligible)"
            " SELECT %s, s.lid, %s, s.new_total, s.new_fit, s.new_eng, s.new_grade, s.new_band,"
            f" s.new_mql, s.old_grade, s.old_band, s.old_mql FROM {TEMP} s WHERE {changed}",
            [organization_id, stamp],
        )
        cursor.execute(
            "UPDATE leads_lead SET fit_score = s.new_fit, engagement_score = s.new_eng,"
            " score = s.new_total, grade = s.new_grade, band = s.new_band,"
            " mql_eligible = s.new_mql, gating_reason = s.new_gate,"
            " score_breakdown = s.new_breakdown, scored_at = %s,"
            " mql_changed_at = CASE WHEN s.new_mql <> s.old_mql THEN %s"
            " ELSE leads_lead.mql_changed_at END"
            f" FROM {TEMP} s WHERE leads_lead.id = s.lid",
            [stamp, stamp],
        )
        result.scored = cursor.rowcount
        cursor.execute(f"SELECT s.lid, s.new_mql FROM {TEMP} s WHERE s.new_mql <> s.old_mql")
        for lead_id, mql in cursor.fetchall():
            (result.crossed_up if mql else result.crossed_down).append(lead_id)
        cursor.execute(f"DROP TABLE {TEMP}")
        if result.crossed_up or result.crossed_down:
            for hook in mql_crossing_hooks:
                hook(organization_id, result.crossed_up, result.crossed_down)
    return result
