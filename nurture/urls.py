from django.urls import path

from nurture.views import direct, email_templates, inbound, lists, outbox, sender, sequences

app_name = "nurture"

# Mounted under /o/<org_slug>/nurture/. Steps, enrollments and messages are
# addressed by their own id (they name their sequence), so one id per URL.
urlpatterns = [
    path("", lists.list_list, name="index"),
    path("lists/", lists.list_list, name="list_list"),
    path("lists/new/", lists.list_create, name="list_create"),
    path("lists/add-leads/", lists.list_bulk_add, name="list_bulk_add"),
    path("lists/<int:list_id>/", lists.list_detail, name="list_detail"),
    path("lists/<int:list_id>/edit/", lists.list_edit, name="list_edit"),
    path("lists/<int:list_id>/search/", lists.list_lead_search, name="list_lead_search"),
    path("lists/<int:list_id>/add/", lists.list_add, name="list_add"),
    path("lists/<int:list_id>/remove/", lists.list_remove, name="list_remove"),
    path("lists/<int:list_id>/refresh/", lists.list_refresh, name="list_refresh"),
    path("templates/", email_templates.template_list, name="template_list"),
    path("templates/new/", email_templates.template_create, name="template_create"),
    path("templates/preview/", email_templates.template_preview, name="template_preview"),
    path(
        "templates/preview/draft.html",
        email_templates.template_draft_html,
        name="template_draft_html",
    ),
    path("templates/<int:template_id>/", email_templates.template_edit, name="template_edit"),
    path(
        "templates/<int:template_id>/preview.html",
        email_templates.template_preview_html,
        name="template_preview_html",
    ),
    path(
        "templates/<int:template_id>/delete/",
        email_templates.template_delete,
        name="template_delete",
    ),
    path(
        "templates/<int:template_id>/test-send/",
        email_templates.template_test_send,
        name="template_test_send",
    ),
    path("sequences/", sequences.sequence_list, name="sequence_list"),
    path("sequences/new/", sequences.sequence_create, name="sequence_create"),
    path("sequences/<int:sequence_id>/", sequences.sequence_detail, name="sequence_detail"),
    path("sequences/<int:sequence_id>/edit/", sequences.sequence_edit, name="sequence_edit"),
    path("sequences/<int:sequence_id>/report/", sequences.sequence_report, name="sequence_report"),
    path("sequences/<int:sequence_id>/steps/new/", sequences.step_create, name="step_create"),
    path("sequences/<int:sequence_id>/enroll/", sequences.sequence_enroll, name="sequence_enroll"),
    path("steps/<int:step_id>/", sequences.step_edit, name="step_edit"),
    path("steps/<int:step_id>/delete/", sequences.step_delete, name="step_delete"),
    path("steps/<int:step_id>/move/", sequences.step_move, name="step_move"),
    path(
        "enrollments/<int:enrollment_id>/pause/",
        sequences.enrollment_pause,
        name="enrollment_pause",
    ),
    path(
        "enrollments/<int:enrollment_id>/resume/",
        sequences.enrollment_resume,
        name="enrollment_resume",
    ),
    path(
        "enrollments/<int:enrollment_id>/stop/", sequences.enrollment_stop, name="enrollment_stop"
    ),
    path("sender/", sender.sender_settings, name="sender_settings"),
    path("sender/resend/", sender.sender_resend, name="sender_resend"),
    path("outbox/", outbox.outbox, name="outbox"),
    path("outbox/dispatch/", outbox.outbox_dispatch, name="outbox_dispatch"),
    path("outbox/<int:message_id>/", outbox.message_detail, name="message_detail"),
    path("outbox/<int:message_id>/body.html", outbox.message_body, name="message_body"),
    path("outbox/<int:message_id>/resend/", outbox.message_resend, name="message_resend"),
    path("leads/<int:lead_id>/email/", direct.lead_email, name="lead_email"),
    path("inbound/", inbound.inbound_settings, name="inbound_settings"),
    path("inbound/unmatched/", inbound.inbound_unmatched, name="inbound_unmatched"),
    path("inbound/<int:inbound_id>/attach/", inbound.inbound_attach, name="inbound_attach"),
    path("inbound/<int:inbound_id>/dismiss/", inbound.inbound_dismiss, name="inbound_dismiss"),
]
