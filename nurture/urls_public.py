from django.urls import path

from nurture import views_inbound, views_public

app_name = "nurture_public"

urlpatterns = [
    path("e/u/<str:token>/", views_public.unsubscribe, name="unsubscribe"),
    path("e/o/<str:token>.gif", views_public.track_open, name="open"),
    path("e/c/<str:token>/", views_public.track_click, name="click"),
    path("e/sender/<str:token>/", views_public.sender_verify, name="sender_verify"),
    path("inbound/mail/<str:key>/", views_inbound.inbound_mail, name="inbound_mail"),
]
