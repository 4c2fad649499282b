"""Small presentation helpers for lead pages."""

import logging

from django import template
from django.core.cache import cache
from django.utils.html import format_html
from django.utils.safestring import SafeString

from leads import rows, timeline
from leads.rows import LeadRowUrls

register = template.Library()
log = logging.getLogger(__name__)
FRAGMENT_SECONDS = 300


class FragmentCacheNode(template.Node):
    def __init__(self, nodelist, key):
        self.nodelist, self.key = nodelist, key

    def render(self, context):
        key = self.key.resolve(context)
        if not key:
            return self.nodelist.render(context)
        read = context.get("kept_fragments") or {}  # what the view read in one round trip
        if key in read:
            found = read[key]
        else:
            try:
                found = cache.get(key)
            except Exception:  # an outage costs the rendering, never the page
                log.warning("Cache unavailable; fragment %s rendered", key)
                return self.nodelist.render(context)
        if found is not None:
            return found
        rendered = self.nodelist.render(context)
        try:
            cache.set(key, rendered, FRAGMENT_SECONDS)
        except Exception:
            log.warning("Cache unavailable; fragment %s not kept", key)
        return rendered


@register.tag
def fragment_cache(parser, token):
    """{% fragment_cache key %}…{% endfragment_cache %}: the block's markup kept in the
    shared cache under `key` (a view-made key naming everything the markup depends
    on, e.g. leads.controls.controls_key); an empty key or a cache outage renders it."""
    bits = token.split_contents()
    if len(bits) != 2:
        raise template.TemplateSyntaxError("fragment_cache takes one argument: the key")
    nodelist = parser.parse(("endfragment_cache",))
    parser.delete_first_token()
    return FragmentCacheNode(nodelist, parser.compile_filter(bits[1]))


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
def lead_rows(context, leads):
    """The lead list's rows (leads/rows.py): one tag for the page, its URLs reversed once."""
    urls = LeadRowUrls(context["current_org"].slug, context["row_labels"])
    can_edit = context["can_edit"]
    built = (rows.lead_row(lead, urls=urls, can_edit=can_edit) for lead in leads)
    return SafeString("\n".join(built))


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
