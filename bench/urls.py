"""Bench-only URLs: the real app plus the floor, a bare view doing one INSERT.

`make bench` runs every bench/*.py as a script; this module only makes sense
imported by the bench server, so as a script it does nothing.
"""

if __name__ == "__main__":
    raise SystemExit(0)

import os

from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from accounts.decorators import public_view
from leadflow.tenancy import tenant_scope
from leads.models import FormSubmission


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


urlpatterns = [
    path("bench/floor/", floor, name="bench_floor"),
    path("", include("leadflow.urls")),
]
