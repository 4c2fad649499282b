"""Input the database can't store, found at the edge so it is refused with a 4xx.

PostgreSQL refuses NUL characters in text and in JSON, unpaired UTF-16
surrogates can't be encoded at all, and deeply nested JSON exhausts Python's
recursion (and PostgreSQL's jsonb stack) long before it means anything. The
API, the hosted form and every query string check here before anything is
stored or queried.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

# Deeper than any lead, custom attribute or activity property needs.
MAX_JSON_DEPTH = 32
NUL_MESSAGE = "Text may not contain NUL (\\u0000) characters."
SURROGATE_MESSAGE = "Text contains an unpaired UTF-16 surrogate (invalid Unicode)."
DEPTH_MESSAGE = f"The JSON document is nested too deeply (at most {MAX_JSON_DEPTH} levels)."


class TooDeep(ValueError):
    """A JSON document nested deeper than MAX_JSON_DEPTH."""


def text_problem(value: str) -> str | None:
    """Why the database can't store this string, or None."""
    if "\x00" in value:
        return NUL_MESSAGE
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_MESSAGE
    return None


def json_problem(document: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why a parsed JSON document can't be stored (too deep first, then bad
    text), or None. Iterative, so any depth Python's parser accepted is safe."""
    stack: list[tuple[Any, int]] = [(document, 0)]
    problem = None
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            problem = problem or text_problem(value)
        elif isinstance(value, dict | list):
            if depth >= max_depth:
                return DEPTH_MESSAGE
            children = value.values() if isinstance(value, dict) else value
            if isinstance(value, dict):
                stack.extend((key, depth) for key in value)
            stack.extend((child, depth + 1) for child in children)
    return problem


def query_problem(pairs: Iterable[tuple[str, list[str]]]) -> str | None:
    for key, values in pairs:
        for text in (key, *values):
            problem = text_problem(text)
            if problem:
                return problem
    return None


class UtcDateTimeField(forms.DateTimeField):
    """A date-time field whose value is stored in UTC: any offset a browser or
    script sends (up to ±23:59) is valid input, but PostgreSQL only takes
    offsets up to ±15:59, and one near the calendar's ends can't be converted."""

    def to_python(self, value):
        result = super().to_python(value)
        if result is None or result.tzinfo is None:
            return result
        try:
            return result.astimezone(UTC)
        except OverflowError as exc:
            raise forms.ValidationError("Enter a date and time within the calendar.") from exc


class BadQueryMiddleware:
    """Every query parameter (name and value) with a NUL character is a 400,
    before any view, filter or the API parses it: one rule for the whole site
    instead of one per search box."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "%00" in request.META.get("QUERY_STRING", ""):
            problem = query_problem(request.GET.lists())
            if problem:
                return bad_request(request, "invalid_text", f"Query parameter: {problem}")
        return self.get_response(request)


def bad_request(request: HttpRequest, code: str, message: str) -> HttpResponse:
    """A 400 in the API's JSON error shape under /api/, the 400 page elsewhere."""
    if request.path.startswith("/api/"):
        body = {"error": {"code": code, "message": message, "details": []}}
        return JsonResponse(body, status=400)
    return render(request, "400.html", {"message": message}, status=400)
