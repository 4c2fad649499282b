"""Extra panels on the lead detail page, contributed by higher apps (scoring,
pipeline…) without the leads app importing them: each registers a callable
(request, lead) -> {"template": ..., **context} or None."""

from collections.abc import Callable

lead_detail_panels: list[Callable] = []


def panels_for(request, lead) -> list[dict]:
    return [panel for make in lead_detail_panels if (panel := make(request, lead))]
