"""Site-wide views (the roof); the create/edit form page helper is leadflow.core.formpage."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.defaults import page_not_found


def not_found(request, exception):
    """API clients get the API's JSON error shape; people get the 404 page."""
    if request.path.startswith("/api/"):
        body = {"error": {"code": "not_found", "message": "No such endpoint.", "details": []}}
        return JsonResponse(body, status=404)
    return page_not_found(request, exception)
