"""The scoring engine: `rules` compiles the rules to one SELECT of new scores,
`apply` is the write seam that stores any such SELECT (scores, history, MQL
crossings). See both modules' docstrings for the scoring rules."""

from scoring.engine.apply import (
    RescoreResult,
    apply_lead_scores,
    apply_scores,
    new_lead_scores,
    rescore,
    rescore_leads,
    scored_at_insert,
)
from scoring.engine.cache import config_changed
from scoring.engine.rules import (
    GRADES,
    AgeDays,
    Config,
    activity_filter,
    compiles,
    load_config,
    property_condition,
    scores_sql,
)

__all__ = [
    "GRADES",
    "AgeDays",
    "Config",
    "RescoreResult",
    "activity_filter",
    "apply_lead_scores",
    "apply_scores",
    "compiles",
    "config_changed",
    "load_config",
    "new_lead_scores",
    "property_condition",
    "rescore",
    "rescore_leads",
    "scored_at_insert",
    "scores_sql",
]
