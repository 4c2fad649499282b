"""Scoring pages, mounted at /o/<org_slug>/scoring/."""

from django.urls import path

from scoring import views

app_name = "scoring"

urlpatterns = [
    path("", views.rule_list, name="rule_list"),
    path("rules/new/", views.rule_create, name="rule_create"),
    path("rules/simulate/", views.rule_simulate, name="rule_simulate"),
    path("rules/<int:rule_id>/", views.rule_edit, name="rule_edit"),
    path("rules/<int:rule_id>/simulate/", views.rule_simulate, name="rule_simulate"),
    path("rules/<int:rule_id>/toggle/", views.rule_toggle, name="rule_toggle"),
    path("rules/<int:rule_id>/delete/", views.rule_delete, name="rule_delete"),
    path("settings/", views.settings_edit, name="settings"),
    path(
        "settings/post-qualification/",
        views.post_qualification_add,
        name="post_qualification_add",
    ),
    path(
        "settings/post-qualification/<int:post_qual_id>/remove/",
        views.post_qualification_remove,
        name="post_qualification_remove",
    ),
    path("gates/new/", views.gate_create, name="gate_create"),
    path("gates/<int:gate_id>/", views.gate_edit, name="gate_edit"),
    path("gates/<int:gate_id>/delete/", views.gate_delete, name="gate_delete"),
    path("groups/new/", views.group_create, name="group_create"),
    path("groups/<int:group_id>/", views.group_edit, name="group_edit"),
    path("groups/<int:group_id>/delete/", views.group_delete, name="group_delete"),
    path("rescore/", views.rescore_start, name="rescore_start"),
    path("rescore/<int:rescore_job_id>/", views.rescore_progress, name="rescore_progress"),
    path("changes/", views.audit_log, name="audit_log"),
    path("learning/", views.learning_overview, name="learning"),
    path("learning/start/", views.learning_start, name="learning_start"),
    path("learning/<int:learning_job_id>/", views.learning_progress, name="learning_progress"),
    path("versions/starter/", views.starter_draft, name="starter_draft"),
    path("versions/rollback/", views.version_rollback, name="version_rollback"),
    path("versions/export.csv", views.rules_export, name="rules_export"),
    path(
        "versions/export.yaml",
        views.rules_export,
        {"fmt": "yaml"},
        name="rules_export_yaml",
    ),
    path("versions/import/", views.rules_import, name="rules_import"),
    path("versions/<int:version_id>/", views.version_detail, name="version_detail"),
    path("versions/<int:version_id>/simulate/", views.version_simulate, name="version_simulate"),
    path("versions/<int:version_id>/apply/", views.version_apply, name="version_apply"),
    path("versions/<int:version_id>/discard/", views.version_discard, name="version_discard"),
]
