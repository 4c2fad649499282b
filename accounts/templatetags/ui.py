"""Small presentation helpers that keep style="" attributes out of templates
(the Content-Security-Policy forbids inline styles)."""

from django import template

register = template.Library()


@register.filter
def pct_class(value) -> str:
    """A progress bar's width as a class from static/css/app.css: pct-0 … pct-100."""
    try:
        number = round(float(value))
    except (TypeError, ValueError):
        number = 0
    return f"pct-{min(100, max(0, number))}"
