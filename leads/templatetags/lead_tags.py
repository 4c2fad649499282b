"""Small presentation helpers for lead pages."""

from django import template
from django.utils.html import format_html

register = template.Library()

QUALITY_CLASSES = {"ok": "success", "suspect": "warning", "junk": "danger"}


@register.simple_tag(takes_context=True)
def sort_header(context, key: str, label: str):
    """A column header that toggles ?o=key / ?o=-key, keeping the other filters."""
    request = context["request"]
    current = request.GET.get("o", "")
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("cursor", None)  # a new order starts from its first page
    query["o"] = f"-{key}" if current == key else key
    arrow = ""
    if current == key:
        arrow = " ▲"
    elif current == f"-{key}":
        arrow = " ▼"
    return format_html(
        '<a class="link-body-emphasis text-decoration-none" href="?{}">{}{}</a>',
        query.urlencode(),
        label,
        arrow,
    )


@register.filter
def quality_badge(quality: str):
    css = QUALITY_CLASSES.get(quality, "secondary")
    return format_html('<span class="badge text-bg-{}">{}</span>', css, quality)


@register.simple_tag(takes_context=True)
def page_url(context, number: int):
    query = context["request"].GET.copy()
    query["page"] = number
    return "?" + query.urlencode()
