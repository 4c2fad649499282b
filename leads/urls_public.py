from django.urls import path

from leads.views import capture as views
from leads.views import consent as consent_views

# Mounted at the site root: the hosted capture form, resolved by its unguessable key.
urlpatterns = [
    path("f/<str:form_key>/", views.hosted_form, name="hosted_form"),
    # Double opt-in: the link in the confirmation email, resolved by its signed token.
    path("c/<str:token>/", consent_views.consent_confirm, name="consent_confirm"),
]
