"""Panels on the organization overview, contributed by higher apps (leads,
reports…) without accounts importing them: callable(request) -> dict | None
with a "template" key and its context."""

from collections.abc import Callable

home_panels: list[Callable] = []


def panels_for(request) -> list[dict]:
    return [panel for make in home_panels if (panel := make(request))]


# A role whose work lives on another page lands there instead of the overview
# (role -> URL name taking org_slug), e.g. a sales rep on their lead queue.
role_home: dict[str, str] = {}
