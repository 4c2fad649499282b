"""The one create/edit form page every app's views use (ground floor: no app imports)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import render

from leadflow.core.errors import LeadflowError


def form_page(
    request,
    form,
    *,
    save: Callable[[Any], Any],
    saved: Callable[[Any], tuple[str, HttpResponse]],
    template: str,
    context: dict | None = None,
) -> HttpResponse:
    """A create/edit page. GET shows the form; a valid POST calls save(form) ->
    object, then saved(object) -> (message, response): the message is flashed
    and the response (a redirect) followed. A service's LeadflowError becomes a
    form error. A form with errors answers 400 with the page, else 200."""
    if request.method == "POST" and form.is_valid():
        try:
            obj = save(form)
        except LeadflowError as exc:
            form.add_error(None, str(exc))
        else:
            message, response = saved(obj)
            messages.success(request, message)
            return response
    status = 400 if form.errors else 200
    return render(request, template, {"form": form, **(context or {})}, status=status)
