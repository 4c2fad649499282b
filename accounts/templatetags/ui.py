"""Small presentation helpers that keep style="" attributes out of templates
(the Content-Security-Policy forbids inline styles)."""

from django import template

from leadflow.core.rowhtml import IdUrl

register = template.Library()


@register.simple_tag
def id_url(viewname: str, id_kwarg: str, **kwargs) -> IdUrl:
    """A URL pattern reversed once for a page's rows: `{% id_url "leads:lead_detail"
    "lead_id" org_slug=current_org.slug as lead_url %}`, then `{{ lead_url|with_id:lead.pk }}`
    in the row loop instead of a `{% url %}` (a full reverse) per row."""
    return IdUrl(viewname, id_kwarg, **kwargs)


@register.filter
def with_id(url: IdUrl, pk) -> str:
    return url(pk)


@register.filter
def pct_class(value) -> str:
    """A progress bar's width as a class from static/css/app.css: pct-0 … pct-100."""
    try:
        number = round(float(value))
    except (TypeError, ValueError):
        number = 0
    return f"pct-{min(100, max(0, number))}"
