"""Lead URLs. Tenant pages are mounted under /o/<org_slug>/; the public capture
endpoints (/f/<form_key>/) resolve their tenant from the form's unguessable key.

Each part lives in its own module so the parts can grow independently.
"""

from django.urls import include, path

app_name = "leads"

urlpatterns = [
    path("", include("leads.urls_public")),
    path("o/<slug:org_slug>/leads/", include("leads.urls_leads")),
    path("o/<slug:org_slug>/", include("leads.urls_crm")),
    path("o/<slug:org_slug>/forms/", include("leads.urls_capture_forms")),
    path("o/<slug:org_slug>/imports/", include("leads.urls_imports")),
]
