"""Every pipeline write. Import from here: `from pipeline import services`."""

from pipeline.policy import policy_get
from pipeline.routing import leads_route
from pipeline.services.config import (
    policy_save,
    routing_rule_delete,
    routing_rule_save,
    team_delete,
    team_member_remove,
    team_member_save,
    team_member_set_away,
    team_save,
)
from pipeline.services.deal_stages import (
    deal_stage_delete,
    deal_stage_move,
    deal_stage_save,
    deal_stages_install,
    opportunity_move,
)
from pipeline.services.followups import (
    follow_ups_remind,
    followup_complete,
    followup_create,
    followup_reopen,
    followup_update,
)
from pipeline.services.mql import (
    lead_mark_mql_manual,
    leads_mark_mql,
    pql_evaluate,
)
from pipeline.services.notifications import notifications_mark_read, notify
from pipeline.services.sales import (
    lead_accept,
    lead_assign,
    lead_disqualify,
    lead_qualify,
    lead_recycle,
    lead_reject,
    lead_reopen,
    lead_touch,
    opportunity_close,
    opportunity_open,
    opportunity_update,
    qualification_save,
)
from pipeline.services.sla import sla_check
from pipeline.services.transitions import stage_transition, stages_transition_many

__all__ = [
    "deal_stage_delete",
    "deal_stage_move",
    "deal_stage_save",
    "deal_stages_install",
    "follow_ups_remind",
    "followup_complete",
    "followup_create",
    "followup_reopen",
    "followup_update",
    "lead_accept",
    "lead_assign",
    "lead_disqualify",
    "lead_mark_mql_manual",
    "lead_qualify",
    "lead_recycle",
    "lead_reject",
    "lead_reopen",
    "lead_touch",
    "leads_mark_mql",
    "leads_route",
    "notifications_mark_read",
    "notify",
    "opportunity_close",
    "opportunity_move",
    "opportunity_open",
    "opportunity_update",
    "policy_get",
    "policy_save",
    "pql_evaluate",
    "qualification_save",
    "routing_rule_delete",
    "routing_rule_save",
    "sla_check",
    "stage_transition",
    "stages_transition_many",
    "team_delete",
    "team_member_remove",
    "team_member_save",
    "team_member_set_away",
    "team_save",
]
