from django.urls import path

from privacy import views

app_name = "privacy"

urlpatterns = [
    path("", views.privacy_index, name="index"),
    path("person/", views.person_detail, name="person"),
    path("person/export/", views.person_export_view, name="export"),
    path("person/erase/", views.person_erase_view, name="erase"),
    path("consent.csv", views.consent_ledger_csv, name="consent_csv"),
]
