from django.urls import include, path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("app/", views.home, name="home"),
    path("orgs/", views.org_list, name="org_list"),
    path("orgs/new/", views.org_create, name="org_create"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("o/<slug:org_slug>/api-keys/", include("accounts.urls_apikeys")),
    path("o/<slug:org_slug>/", include("accounts.org_urls")),
]
