from django.urls import path

from leads.views import leads as views

# Mounted under /o/<org_slug>/leads/.
urlpatterns = [
    path("", views.lead_list, name="lead_list"),
    path("export.csv", views.lead_export, name="lead_export"),
    path("export/", views.lead_export_page, name="lead_export_page"),
    path("export/<int:export_id>/", views.lead_export_job, name="lead_export_job"),
    path(
        "export/<int:export_id>/download/",
        views.lead_export_download,
        name="lead_export_download",
    ),
    path("bulk/", views.lead_bulk, name="lead_bulk"),
    path("review/", views.review_list, name="review_list"),
    path("duplicates/", views.duplicate_list, name="duplicate_list"),
    path("duplicates/rebuild/", views.duplicates_rebuild, name="duplicates_rebuild"),
    path(
        "duplicates/<int:candidate_id>/dismiss/",
        views.duplicate_dismiss,
        name="duplicate_dismiss",
    ),
    path("merges/", views.merge_list, name="merge_list"),
    path("merges/<int:merge_id>/undo/", views.lead_merge_undo, name="lead_merge_undo"),
    path("<int:lead_id>/", views.lead_detail, name="lead_detail"),
    path("<int:lead_id>/edit/", views.lead_edit, name="lead_edit"),
    path("<int:lead_id>/approve/", views.lead_approve, name="lead_approve"),
    path("<int:lead_id>/discard/", views.lead_discard, name="lead_discard"),
    path("<int:lead_id>/merge/<int:other_lead_id>/", views.lead_merge, name="lead_merge"),
]
