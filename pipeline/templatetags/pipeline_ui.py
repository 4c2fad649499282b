"""Pipeline badges and the queue row's cells, one copy each (pipeline/rows.py)."""

from django import template

from pipeline import rows

register = template.Library()


@register.simple_tag
def stage_badge(lead):
    return rows.stage_badge(lead.stage, lead.get_stage_display())


@register.simple_tag
def score_badges(lead):
    return rows.score_badges(lead)


@register.simple_tag(takes_context=True)
def queue_row_cells(context, row, open_action=""):
    """The row's cells; the view put its reversed-once URLs in `queue_urls`."""
    return rows.queue_row_cells(row, urls=context["queue_urls"], open_action=open_action)


@register.simple_tag
def queue_row_attrs(row):
    return rows.queue_row_attrs(row)


@register.simple_tag(takes_context=True)
def queue_rows(context, page_rows):
    return rows.queue_rows(page_rows, urls=context["queue_urls"])
