"""CSV import pages, mounted at /o/<org_slug>/imports/."""

from django.urls import path

from leads.views import imports as views

urlpatterns = [
    path("", views.import_list, name="import_list"),
    path("<int:job_id>/", views.import_detail, name="import_detail"),
    path("<int:job_id>/progress/", views.import_progress, name="import_progress"),
    path("<int:job_id>/errors.csv", views.import_errors, name="import_errors"),
]
