"""Pipeline pages, mounted at /o/<org_slug>/pipeline/."""

from django.urls import path

from pipeline.views import deal_stages, deals, followups, queue, settings, team, webhooks

app_name = "pipeline"

# One view runs every quick action on a lead; each action has its own URL name
# (pipeline:lead_accept, pipeline:lead_reject, …) so templates and tests name it.
_lead_actions = [
    path(f"leads/<int:lead_id>/{name.replace('_', '-')}/", view, {"action": name},
         name=f"lead_{name}")
    for view, names in ((queue.lead_action, queue.WORK_ACTIONS),
                        (queue.lead_handoff, queue.HANDOFF_ACTIONS))
    for name in names
]  # fmt: skip

urlpatterns = [
    path("", queue.queue, name="queue"),
    path("leads/<int:lead_id>/row/", queue.lead_row, name="lead_row"),
    *_lead_actions,
    path("my-day/", followups.my_day, name="my_day"),
    path("tasks/<int:follow_up_id>/", followups.follow_up_edit, name="follow_up_edit"),
    path(
        "tasks/<int:follow_up_id>/complete/",
        followups.follow_up_complete,
        name="follow_up_complete",
    ),
    path("tasks/<int:follow_up_id>/reopen/", followups.follow_up_reopen, name="follow_up_reopen"),
    path(
        "opportunities/<int:opportunity_id>/tasks/new/",
        followups.opportunity_follow_up,
        name="opportunity_follow_up",
    ),
    path("team/", team.team, name="team"),
    path("team/seats/<int:team_member_id>/away/", team.team_member_away, name="team_member_away"),
    path("board/", deals.board, name="board"),
    path("board/deals/<int:opportunity_id>/move/", deals.board_move, name="board_move"),
    path("opportunities/<int:opportunity_id>/", deals.opportunity_edit, name="opportunity"),
    path("settings/", settings.settings, name="settings"),
    path("settings/teams/new/", settings.team_create, name="team_create"),
    path("settings/teams/<int:team_id>/", settings.team_edit, name="team_edit"),
    path("settings/teams/<int:team_id>/delete/", settings.team_delete, name="team_delete"),
    path(
        "settings/teams/<int:team_id>/seats/new/",
        settings.team_member_create,
        name="team_member_create",
    ),
    path(
        "settings/seats/<int:team_member_id>/", settings.team_member_edit, name="team_member_edit"
    ),
    path(
        "settings/seats/<int:team_member_id>/remove/",
        settings.team_member_remove,
        name="team_member_remove",
    ),
    path("settings/rules/new/", settings.rule_create, name="rule_create"),
    path("settings/rules/<int:routing_rule_id>/", settings.rule_edit, name="rule_edit"),
    path("settings/rules/<int:routing_rule_id>/delete/", settings.rule_delete, name="rule_delete"),
    path("settings/stages/", deal_stages.deal_stages, name="deal_stages"),
    path("settings/stages/new/", deal_stages.deal_stage_create, name="deal_stage_create"),
    path(
        "settings/stages/<int:deal_stage_id>/", deal_stages.deal_stage_edit, name="deal_stage_edit"
    ),
    path(
        "settings/stages/<int:deal_stage_id>/delete/",
        deal_stages.deal_stage_delete,
        name="deal_stage_delete",
    ),
    path(
        "settings/stages/<int:deal_stage_id>/reorder/",
        deal_stages.deal_stage_reorder,
        name="deal_stage_reorder",
    ),
    path("settings/webhooks/", webhooks.webhook_list, name="webhook_list"),
    path("settings/webhooks/new/", webhooks.webhook_create, name="webhook_create"),
    path("settings/webhooks/<int:webhook_id>/", webhooks.webhook_detail, name="webhook_detail"),
    path("settings/webhooks/<int:webhook_id>/edit/", webhooks.webhook_edit, name="webhook_edit"),
    path(
        "settings/webhooks/<int:webhook_id>/rotate/", webhooks.webhook_rotate, name="webhook_rotate"
    ),
    path("settings/webhooks/<int:webhook_id>/test/", webhooks.webhook_test, name="webhook_test"),
    path(
        "settings/webhooks/<int:webhook_id>/delete/", webhooks.webhook_delete, name="webhook_delete"
    ),
    path(
        "settings/webhooks/deliveries/<int:delivery_id>/",
        webhooks.webhook_delivery,
        name="webhook_delivery",
    ),
    path(
        "settings/webhooks/deliveries/<int:delivery_id>/redeliver/",
        webhooks.webhook_delivery_redeliver,
        name="webhook_redeliver",
    ),
]
