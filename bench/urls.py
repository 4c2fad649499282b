"""Bench-only URLs: the real app plus two floors, bare views doing one INSERT
(of a submission for the hosted form, of a lead for the API).

`make bench` runs every bench/*.py as a script; this module only makes sense
imported by the bench server, so as a script it does nothing.
"""

if __name__ == "__main__":
    raise SystemExit(0)

import json
import os

from django.http import HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from accounts.apikeys import apikey_authenticate
from accounts.decorators import public_view
from leadflow.core.tenancy import tenant_scope
from leads.models import FormSubmission, Lead


@public_view
@csrf_exempt
def floor(request):
    """The least a capture endpoint could do: store the post as one row."""
    organization_id = int(os.environ["BENCH_ORG_ID"])
    with tenant_scope(organization_id):
        FormSubmission.objects.create(
            organization_id=organization_id,
            form_id=int(os.environ["BENCH_FORM_ID"]),
            payload=request.POST.dict(),
        )
    return HttpResponse("ok", content_type="text/plain")


@public_view
@csrf_exempt
def api_floor(request):
    """The least an API create could do: authenticate the key as the API does
    (accounts.apikeys), then store the posted lead as one row."""
    header = request.headers.get("Authorization", "")
    key = apikey_authenticate(header.removeprefix("Bearer ").strip())
    if key is None:
        return JsonResponse({"error": "unauthorized"}, status=401)
    body = json.loads(request.body)
    with tenant_scope(key.organization_id):
        lead = Lead.objects.create(
            organization_id=key.organization_id,
            email=body["email"],
            first_name=body.get("first_name", ""),
            title=body.get("title", ""),
            country=body.get("country", ""),
        )
    return JsonResponse({"id": lead.pk, "created": True}, status=201)


urlpatterns = [
    path("bench/floor/", floor, name="bench_floor"),
    path("bench/api-floor/", api_floor, name="bench_api_floor"),
    path("", include("leadflow.urls")),
]
