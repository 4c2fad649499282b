from django.urls import path

from leads.views import crm as views

# Mounted under /o/<org_slug>/.
urlpatterns = [
    path("companies/", views.company_list, name="company_list"),
    path("companies/<int:company_id>/", views.company_detail, name="company_detail"),
    path("campaigns/", views.campaign_list, name="campaign_list"),
    path("campaigns/new/", views.campaign_create, name="campaign_create"),
    path("campaigns/<int:campaign_id>/", views.campaign_edit, name="campaign_edit"),
]
