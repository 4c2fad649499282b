"""Small presentation helpers for lead pages."""

from django import template
from django.utils.html import format_html

from leads import rows, timeline
from leads.rows import LeadRowUrls

register = template.Library()


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
    return rows.quality_badge(quality)


@register.simple_tag(takes_context=True)
def lead_row(context, lead):
    """One row of the lead list (leads/rows.py); its URLs are reversed once per page."""
    urls = context.render_context.get(LeadRowUrls)
    if urls is None:
        urls = context.render_context[LeadRowUrls] = LeadRowUrls(context["current_org"].slug)
    return rows.lead_row(lead, urls=urls, can_edit=context["can_edit"])


@register.simple_tag(takes_context=True)
def page_url(context, number: int):
    query = context["request"].GET.copy()
    query["page"] = number
    return "?" + query.urlencode()


@register.simple_tag
def import_status(job):
    return rows.import_status(job)


@register.simple_tag
def import_progress(job, compact=False):
    return rows.import_progress(job, compact=compact)


@register.filter
def activity_details(activity) -> list[tuple[str, str]]:
    """An activity's properties as (label, value) pairs (leads.timeline)."""
    return timeline.activity_details(getattr(activity, "properties", None))
