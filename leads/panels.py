"""Extra panels on the lead detail page, contributed by higher apps (scoring,
pipeline…) on leadflow.core.hooks.lead_detail_panels without the leads app
importing them: each answers (request, lead) -> {"template": ..., **context} or None."""

from leadflow.core import hooks


def panels_for(request, lead) -> list[dict]:
    return [panel for panel in hooks.lead_detail_panels.call(request, lead) if panel]
