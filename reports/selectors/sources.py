"""Source quality: per source (first-touch channel) and per campaign, the cohort's
volume, MQL rate, SQL rate, win rate and junk rate — sorted so the sources to
gate come first.

Order: most junk first, then the lowest MQL rate. A row is flagged "Gate?" when
at least GATE_MIN_LEADS leads arrived and either a third or more were junk or
its MQL rate is under half the period's overall MQL rate.
"""

from __future__ import annotations

from leads.models import Campaign, Channel
from reports.period import ReportQuery
from reports.selectors.funnel import FunnelCounts, cohort_funnel

GATE_MIN_LEADS = 10
GATE_JUNK_RATE = 1 / 3


def _row(label: str, counts: FunnelCounts, overall_mql_rate: float | None) -> dict:
    row = {
        "label": label,
        "leads": counts.leads,
        "junk": counts.junk,
        "junk_rate": counts.junk_rate,
        "mql": counts.mql,
        "mql_rate": counts.mql_rate,
        "sql": counts.sql,
        "sql_rate": counts.sql_rate,
        "won": counts.won,
        "lost": counts.lost,
        "win_rate": counts.win_rate,
        "flag": "",
    }
    if counts.leads >= GATE_MIN_LEADS:
        if (counts.junk_rate or 0) >= GATE_JUNK_RATE:
            row["flag"] = "A third or more of its leads are junk"
        elif overall_mql_rate and (counts.mql_rate or 0) < overall_mql_rate / 2:
            row["flag"] = "Qualifies at under half the average MQL rate"
        row["flag_label"] = "Gate?"
    return row


def _sort(rows: list[dict]) -> list[dict]:
    return sorted(
        rows, key=lambda r: (-(r["junk_rate"] or 0), r["mql_rate"] or 0, -r["leads"], r["label"])
    )


def source_quality(query: ReportQuery) -> dict:
    """{"sources": [row], "campaigns": [row], "total": row} (≤ three queries)."""
    by_source = cohort_funnel(query, group="first_source")
    by_campaign = cohort_funnel(query, group="first_campaign_id")
    total = FunnelCounts.total(by_source.values())
    overall = total.mql_rate
    labels = dict(Channel.choices)
    sources = _sort(
        [
            _row(labels.get(key, "Unknown source") if key else "Unknown source", c, overall)
            for key, c in by_source.items()
        ]
    )
    ids = [pk for pk in by_campaign if pk]
    names = dict(Campaign.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
    campaigns = _sort(
        [
            _row(names.get(pk, "No campaign") if pk else "No campaign", c, overall)
            for pk, c in by_campaign.items()
        ]
    )
    return {"sources": sources, "campaigns": campaigns, "total": _row("All leads", total, None)}
