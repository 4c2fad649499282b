"""The "why this score" panel on the lead detail page (registered in apps.py)."""

from __future__ import annotations

from scoring.models import ScoreHistory, ScoringRule, ScoringSettings
from scoring.selectors import expected_conversion


def score_panel(request, lead) -> dict:
    breakdown = lead.score_breakdown or {}
    ids = [int(key[1:]) for key, points in breakdown.items() if points and key[1:].isdigit()]
    rules = {r.pk: r for r in ScoringRule.objects.filter(pk__in=ids).select_related("group")}
    lines = sorted(
        (
            {"rule": rules.get(int(key[1:])), "points": points}
            for key, points in breakdown.items()
            if points and key[1:].isdigit()
        ),
        key=lambda line: -abs(line["points"]),
    )
    settings = ScoringSettings.objects.filter(organization_id=lead.organization_id).first()
    expected = expected_conversion(score=lead.score) if lead.scored_at else None
    return {
        "expected": expected,
        "expected_pct": None if expected is None else round(100 * expected),
        "template": "leads/partials/score_panel.html",
        "lead": lead,
        "fit_lines": [x for x in lines if x["rule"] and x["rule"].kind == "fit"],
        "engagement_lines": [x for x in lines if x["rule"] and x["rule"].kind == "engagement"],
        "removed_points": sum(x["points"] for x in lines if x["rule"] is None),
        "history": list(ScoreHistory.objects.filter(lead=lead)[:10]),
        "threshold": settings.mql_threshold if settings else None,
    }
