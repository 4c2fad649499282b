"""Small presentation helpers that keep style="" attributes out of templates
(the Content-Security-Policy forbids inline styles)."""

from django import template
from django.utils.safestring import SafeString

from leadflow.core.rowhtml import IdUrl, html

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


PROGRESS_BAR = """<div class="progress{size}"
     role="progressbar"
     aria-label="{aria_label}"
     aria-valuenow="{percent}"
     aria-valuemin="0"
     aria-valuemax="100">
  <div class="progress-bar{state} {width}">{text}</div>
</div>"""
JOB_STATE = {
    "queued": " progress-bar-striped progress-bar-animated",
    "running": " progress-bar-striped progress-bar-animated",
    "failed": " bg-danger",
    "done": " bg-success",
}


@register.simple_tag
def progress_bar(
    percent, *, label: str, state: str = "", size: str = " mb-1 progress-h-sm", text: str = ""
) -> SafeString:
    """The one progress bar of a background job (imports, rescores, learning runs):
    `state` is a JOB_STATE key, or "stalled"; `text` is shown inside the bar."""
    css = " progress-bar-striped bg-warning" if state == "stalled" else JOB_STATE.get(state, "")
    return html(
        PROGRESS_BAR,
        size=size,
        aria_label=label,
        percent=percent,
        state=css,
        width=pct_class(percent),
        text=text,
    )
