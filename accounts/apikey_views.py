"""The API keys page: list, create (the full key is shown once), revoke."""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.apikeys import (
    NAME_MAX_LENGTH,
    ApiKeyError,
    apikey_create,
    apikey_get,
    apikey_revoke,
    organization_api_keys,
)
from accounts.decorators import org_view
from accounts.permissions import Perm

# The new key travels to the next page in the session, never in a URL, and is
# removed from it on that page: it is shown exactly once.
REVEAL_SESSION_KEY = "apikey_reveal"


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=NAME_MAX_LENGTH,
        label="Key name",
        help_text="What will use it, e.g. “Website backend” or “CRM sync”.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", "Create key"))


@org_view(Perm.MANAGE_API_KEYS)
def apikey_list(request):
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            key, full_key = apikey_create(
                organization=request.organization,
                name=form.cleaned_data["name"],
                created_by=request.user,
            )
        except ApiKeyError as exc:
            form.add_error("name", str(exc))
        else:
            request.session[REVEAL_SESSION_KEY] = {"id": key.pk, "key": full_key}
            return redirect("accounts:apikey_list", org_slug=request.organization.slug)
    revealed = request.session.pop(REVEAL_SESSION_KEY, None)
    context = {
        "form": form,
        "keys": organization_api_keys(organization=request.organization),
        "revealed": revealed,
        "api_base": request.build_absolute_uri("/api/v1/"),
    }
    status = 400 if form.errors else 200
    response = render(request, "accounts/apikey_list.html", context, status=status)
    if revealed:
        response["Cache-Control"] = "no-store"  # keep the secret out of caches and history
    return response


@require_POST
@org_view(Perm.MANAGE_API_KEYS)
def apikey_revoke_view(request, apikey_id: int):
    key = apikey_get(organization=request.organization, apikey_id=apikey_id)
    if apikey_revoke(apikey=key):
        messages.success(request, f"Key “{key.name}” revoked; requests with it are now refused.")
    else:
        messages.info(request, f"Key “{key.name}” was already revoked.")
    return redirect("accounts:apikey_list", org_slug=request.organization.slug)
