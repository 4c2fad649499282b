from django.urls import path

from leads.views import capture_forms as views

# Mounted under /o/<org_slug>/forms/. Fields and submissions are addressed by
# their own id (they name their form), so one id per URL.
urlpatterns = [
    path("", views.form_list, name="form_list"),
    path("new/", views.form_create, name="form_create"),
    path("<int:form_id>/", views.form_detail, name="form_detail"),
    path("<int:form_id>/settings/", views.form_edit, name="form_edit"),
    path("<int:form_id>/active/", views.form_toggle_active, name="form_toggle_active"),
    path("<int:form_id>/preview/", views.form_preview, name="form_preview"),
    path("<int:form_id>/fields/new/", views.field_create, name="field_create"),
    path("<int:form_id>/submissions/", views.submission_list, name="submission_list"),
    path("fields/<int:field_id>/", views.field_edit, name="field_edit"),
    path("fields/<int:field_id>/delete/", views.field_delete, name="field_delete"),
    path("fields/<int:field_id>/move/", views.field_move, name="field_move"),
    path("submissions/<int:submission_id>/", views.submission_detail, name="submission_detail"),
]
