"""The rep queue's row, built in Python: 40 rows of ~40 values each through
Django's template engine cost more than the page's SQL (bench/rep_queue.py).

Markup is written as format strings filled by `leadflow.core.rowhtml.html`, which
escapes every value passed in: lead data is never marked safe.
The stage and score badges are shared with the templates through
pipeline/templatetags/pipeline_ui.py, so there is one copy of each.
"""

from __future__ import annotations

from django.template.defaultfilters import capfirst, floatformat
from django.utils import dateformat
from django.utils.formats import get_format
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import TIME_STRINGS, timesince
from django.utils.timezone import template_localtime

from leadflow.core.rowhtml import IdUrl, escape_value, html, show
from leads.models import LeadStage, ScoreBand

_DASH = mark_safe('<span class="text-secondary">—</span>')
_PQL = mark_safe(
    ' <span class="badge text-bg-info" title="Product-qualified: product usage made this lead'
    ' an MQL">PQL</span>'
)


SCORE = '<span class="fw-semibold">{score}</span>{grade}{band}{pql}'
GRADE = ' <span class="badge text-bg-light border">{}</span>'
BAND = ' <span class="badge band-{}">{}</span>'


def stage_badge(stage: str, label: str) -> SafeString:
    return html('<span class="badge stage-badge stage-{}">{}</span>', stage, label)


def score_badges(lead, band_labels: dict | None = None) -> SafeString:
    """Score, grade and band (or a dash before the first scoring), and PQL.
    `band_labels`: the bands' labels translated once for a page of rows."""
    if not lead.scored_at:
        return _DASH + _PQL if lead.is_pql else _DASH
    return html(
        SCORE,
        score=show(lead.score),
        grade=html(GRADE, lead.grade) if lead.grade else "",
        band=html(BAND, lead.band, _band_label(lead, band_labels)) if lead.band else "",
        pql=_PQL if lead.is_pql else "",
    )


def _band_label(lead, labels: dict | None) -> str:
    return labels[lead.band] if labels and lead.band in labels else lead.get_band_display()


class QueueUrls:
    """What every row of one queue page shares: its links reversed once (IdUrl), the
    action buttons' markup filled in once per action, the stage labels."""

    def __init__(self, org_slug: str) -> None:
        self.org_slug = org_slug
        self.lead_detail = IdUrl("leads:lead_detail", "lead_id", org_slug=org_slug)
        self._actions: dict[str, IdUrl] = {}
        self._buttons: dict[tuple, str] = {}
        self.stage_labels = {value: str(label) for value, label in LeadStage.choices}
        self.band_labels = {value: str(label) for value, label in ScoreBand.choices}
        # What `{{ datetime }}` formats with, looked up once (the page's language).
        self.datetime_format = get_format("DATETIME_FORMAT")
        # timesince's "%(num)d days" strings, translated once per count for this page.
        self.time_strings = {unit: _Plural(text) for unit, text in TIME_STRINGS.items()}

    def action(self, name: str, lead_id: int) -> str:
        if name not in self._actions:
            self._actions[name] = IdUrl(f"pipeline:lead_{name}", "lead_id", org_slug=self.org_slug)
        return self._actions[name](lead_id)

    def button(self, template: str, link: dict, css: str = "") -> str:
        """The button's markup with all but its URL and row id filled in (escaped, with
        braces doubled: the row's format() fills in the rest)."""
        key = (template, link["name"], link["label"], link["icon"], css)
        if key not in self._buttons:
            fixed = {k: _braced(link[k]) for k in ("name", "label", "icon")}
            self._buttons[key] = template.format(url="{url}", pk="{pk}", css=_braced(css), **fixed)
        return self._buttons[key]


class _Plural:
    """A lazy plural string whose translations are kept per count."""

    def __init__(self, text) -> None:
        self.text, self.done = text, {}

    def __mod__(self, values: dict) -> str:
        key = values["num"]
        if key not in self.done:
            self.done[key] = self.text % values
        return self.done[key]


def _braced(value) -> str:
    return escape_value(value).replace("{", "{{").replace("}", "}}")


ROW = """<tr>
      <td>
        <a class="fw-semibold" href="{lead_url}">{name}</a>
        <div class="small text-secondary">{title}{title_sep}{company}</div>
        <div class="small text-secondary">{email}{phone}</div>
      </td>
      <td>
        {stage}{deal}
      </td>
      <td class="text-nowrap">{score}</td>
      <td class="small why-routed">
        {reason}{team}
      </td>
      <td class="small text-nowrap">
        {activity}
      </td>
      <td class="text-nowrap">
        {sla}
      </td>
      <td class="text-end text-nowrap">
        {actions}
      </td>
    </tr>"""
DEAL = '\n        <div class="small text-secondary mt-1">{} {}</div>'
TEAM = '\n        <div class="text-secondary"><i class="bi bi-people"></i> {}</div>'
ACTIVITY = '{}\n          <div class="text-secondary" title="{}">{} ago</div>'
NO_ACTIVITY = mark_safe('<span class="text-secondary">None yet</span>')
SLA = (
    '<span class="badge {}" data-testid="sla-badge"{}>\n'
    '          <i class="bi bi-stopwatch"></i> <span class="sla-text">{}</span>\n'
    "        </span>"
)
ON_TIME = mark_safe(
    '<span class="badge text-bg-success-subtle text-success-emphasis">'
    '<i class="bi bi-check2"></i> on time</span>'
)
NO_SLA = mark_safe('<span class="text-secondary small">—</span>')
# A button that opens the action's form in the row (a page without JavaScript).
FORM_LINK = (
    '<a class="btn btn-sm {css}" href="{url}" hx-get="{url}" hx-target="#lead-row-{pk}"'
    ' hx-swap="outerHTML" data-action="{name}"><i class="bi bi-{icon}"></i> {label}</a>'
)
# An action without a form posts at once through the page's one shared form
# (#queue-actions: the CSRF token) — htmx swaps the row; without JavaScript the
# browser submits that form to formaction.
POST_BUTTON = (
    '<button class="btn btn-sm btn-success" type="submit" form="queue-actions"'
    ' formaction="{url}" hx-post="{url}" hx-target="#lead-row-{pk}" hx-swap="outerHTML"'
    ' data-action="{name}"><i class="bi bi-{icon}"></i> {label}</button>'
)
MORE = """<div class="btn-group">
          <button class="btn btn-sm btn-outline-secondary dropdown-toggle" type="button" data-bs-toggle="dropdown" aria-expanded="false" aria-label="More actions" data-action="more">
            <i class="bi bi-three-dots"></i>
          </button>
          <ul class="dropdown-menu dropdown-menu-end">
            {}
          </ul>
        </div>"""  # noqa: E501
MORE_ITEM = (
    '<li><a class="dropdown-item" href="{url}" hx-get="{url}" hx-target="#lead-row-{pk}"'
    ' hx-swap="outerHTML" data-action="{name}"><i class="bi bi-{icon} me-1"></i> {label}</a></li>'
)


def _actions(row, urls: QueueUrls, open_action: str) -> SafeString:
    buttons = []
    for link in row.primary_actions:
        if link["has_form"]:
            css = "btn-primary" if open_action == link["name"] else "btn-outline-primary"
            template = urls.button(FORM_LINK, link, css)
        else:
            template = urls.button(POST_BUTTON, link)
        buttons.append(template.format(url=escape_value(link["url"]), pk=int(row.pk)))
    if row.more_actions:
        items = "\n            ".join(
            urls.button(MORE_ITEM, link).format(url=escape_value(link["url"]), pk=int(row.pk))
            for link in row.more_actions
        )
        buttons.append(MORE.format(items))
    # Every part is markup of this module with escaped values filled in.
    return mark_safe("\n        ".join(buttons))


def _sla(row) -> SafeString:
    if row.sla:
        due = ""
        if row.sla_due_at:
            # The date filter's "c": ISO 8601 of the local time.
            due = html(' data-due="{}"', template_localtime(row.sla_due_at).isoformat())
        return html(SLA, row.sla["css"], due, row.sla["text"])
    return ON_TIME if row.accepted_at else NO_SLA


def _activity(row, urls: QueueUrls) -> SafeString:
    if not row.last_activity_at:
        return NO_ACTIVITY
    kind = capfirst((row.last_activity_kind or "activity").replace("_", ""))
    try:  # the timesince filter
        since = timesince(row.last_activity_at, time_strings=urls.time_strings)
    except (ValueError, TypeError):
        since = ""
    # `{{ last_activity_at }}`: local time in the page's DATETIME_FORMAT (escaped by html).
    at = dateformat.format(template_localtime(row.last_activity_at), urls.datetime_format)
    return html(ACTIVITY, kind, at, since)


def queue_row_cells(row, *, urls: QueueUrls, open_action: str = "") -> SafeString:
    """The row's cells (one <tr>) as the queue page and its htmx answers show them."""
    deal = getattr(row, "opportunity", None) if row.stage == "opportunity" else None
    return html(
        ROW,
        lead_url=urls.lead_detail(row.pk),
        name=row.full_name or row.email or row.external_id,
        title=row.title or "",
        title_sep=" · " if row.title and row.company_name else "",
        company=row.company_name,
        email=row.email,
        phone=html(" · {}", row.phone) if row.phone else "",
        stage=stage_badge(row.stage, urls.stage_labels.get(row.stage, row.stage)),
        deal=html(DEAL, deal.currency, floatformat(deal.amount, "0g")) if deal else "",
        score=score_badges(row, urls.band_labels),
        reason=row.assignment_reason or "—",
        team=html(TEAM, row.team_name) if row.team_name else "",
        activity=_activity(row, urls),
        sla=_sla(row),
        actions=_actions(row, urls, open_action),
    )


def queue_row_attrs(row) -> SafeString:
    """The row's <tbody> attributes (its id is the htmx swap target)."""
    overdue = " is-overdue" if row.sla and row.sla["overdue"] else ""
    return html(ROW_ATTRS, pk=int(row.pk), overdue=overdue)


ROW_ATTRS = (
    'id="lead-row-{pk}" class="queue-lead{overdue}" data-testid="queue-row" data-lead="{pk}"'
)
TBODY = """<tbody {}>
              {}
            </tbody>"""


def queue_rows(rows, *, urls: QueueUrls) -> SafeString:
    """The queue page's rows: a <tbody> each (an htmx answer replaces one)."""
    return mark_safe(  # each part came from html()
        "\n            ".join(
            TBODY.format(queue_row_attrs(row), queue_row_cells(row, urls=urls)) for row in rows
        )
    )
