from django.urls import path

from leads.views import capture as views

# Mounted at the site root: the hosted capture form, resolved by its unguessable key.
urlpatterns = [
    path("f/<str:form_key>/", views.hosted_form, name="hosted_form"),
]
