from django.urls import path

from privacy import views

app_name = "audit"

# Mounted under /o/<org_slug>/audit/ (its own section in the navigation).
urlpatterns = [
    path("", views.audit_log_view, name="log"),
]
