from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views
from leadflow.api import api

# Tenant pages live under /o/<org_slug>/ (each app's urls.py mounts its own);
# the tenancy middleware resolves the organization and opens its scope there.
# The API comes first: its clients are the busiest, and Django tries patterns in order.
urlpatterns = [
    path("api/v1/", api.urls),
    path("", account_views.landing, name="landing"),
    path("", include("accounts.urls")),
    path("", include("leads.urls")),
    path("o/<slug:org_slug>/scoring/", include("scoring.urls")),
    path("o/<slug:org_slug>/pipeline/", include("pipeline.urls")),
    path("o/<slug:org_slug>/notifications/", include("pipeline.notification_urls")),
    path("o/<slug:org_slug>/nurture/", include("nurture.urls")),
    path("o/<slug:org_slug>/reports/", include("reports.urls")),
    path("o/<slug:org_slug>/privacy/", include("privacy.urls")),
    path("o/<slug:org_slug>/audit/", include("privacy.urls_audit")),
    path("", include("nurture.urls_public")),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
]

handler404 = "leadflow.views.not_found"
handler500 = "leadflow.core.dbfaults.server_error_view"
