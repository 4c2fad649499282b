from django.urls import path

from accounts import apikey_views as views

# Mounted under /o/<org_slug>/api-keys/.
urlpatterns = [
    path("", views.apikey_list, name="apikey_list"),
    path("<int:apikey_id>/revoke/", views.apikey_revoke_view, name="apikey_revoke"),
]
