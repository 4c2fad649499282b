"""The rep queue's row, built in Python: 40 rows of ~40 values each through
Django's template engine cost more than the page's SQL (bench/rep_queue.py).

Markup is written as format strings filled by `leadflow.core.rowhtml.html`, which
escapes every value passed in: lead data is never marked safe.
The stage and score badges are shared with the templates through
pipeline/templatetags/pipeline_ui.py, so there is one copy of each.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.template.defaultfilters import floatformat
from django.template.loader import render_to_string
from django.utils.formats import get_format
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime

from accounts.layout import org_id_url
from leadflow.core.rowhtml import _SENTINEL, IdUrl, escape_value, html, show
from leads.models import LeadStage, ScoreBand
from leads.timeline import kind_label
from pipeline.rowtime import page_times

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


PRIMARY_ACTIONS = 2  # a stage's first two actions are buttons; the rest sit in "More"


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one per action
class RowAction:
    """A button of the queue row: the action's name, label and icon, and whether
    it opens a form (or posts at once)."""

    name: str
    label: str
    icon: str
    has_form: bool


class QueueUrls:
    """What every row of one queue page shares: its links reversed once (IdUrl), the
    action buttons' markup filled in once per action, the stage labels."""

    def __init__(self, org_slug: str) -> None:
        self.org_slug = org_slug
        self._slot: list[str] | None = None
        self.lead_detail = org_id_url("leads:lead_detail", "lead_id", org_slug)
        self._actions: dict[str, IdUrl] = {}
        # A stage's buttons per open form, cut where the row id goes (_actions).
        self.action_markup: dict[tuple, list[str] | None] = {}
        self.stage_labels = {value: str(label) for value, label in LeadStage.choices}
        self.band_labels = {value: str(label) for value, label in ScoreBand.choices}
        # `{{ datetime }}` and `|timesince`, their words translated once for this page.
        self.datetime_format, self.time_since = page_times(get_format("DATETIME_FORMAT"))
        self.kind_labels: dict[str | None, str] = {}  # activity kinds' names, translated once

    def kind_label(self, kind: str | None) -> str:
        if kind not in self.kind_labels:
            self.kind_labels[kind] = kind_label(kind)
        return self.kind_labels[kind]

    def row_slot(self, pk: int) -> SafeString:
        """The per-row slot (pipeline/partials/queue_row_slot.html: other parts' small
        row actions, e.g. "+ task"), rendered once per page and given each row's id."""
        if self._slot is None:
            markup = render_to_string(
                "pipeline/partials/queue_row_slot.html",
                {"lead_id": _SENTINEL, "org_slug": self.org_slug},
            ).strip()
            self._slot = markup.split(_SENTINEL)
        # The template's own output (autoescaped) with an int cut into it.
        return mark_safe(str(int(pk)).join(self._slot))

    def _action_url(self, name: str) -> IdUrl:
        if name not in self._actions:
            self._actions[name] = org_id_url(f"pipeline:lead_{name}", "lead_id", self.org_slug)
        return self._actions[name]

    def action(self, name: str, lead_id: int) -> str:
        return self._action_url(name)(lead_id)

    def action_with_id(self, name: str, text: str) -> str | None:
        """The action's URL with `text` where the lead id goes (None: see IdUrl.parts)."""
        parts = self._action_url(name).parts
        return f"{parts[0]}{text}{parts[1]}" if parts else None

    def button(self, template: str, action: RowAction, css: str = "") -> str:
        """The button's markup with all but its URL and row id filled in (escaped, with
        braces doubled: format() fills in the rest)."""
        fixed = {k: _braced(getattr(action, k)) for k in ("name", "label", "icon")}
        return template.format(url="{url}", pk="{pk}", css=_braced(css), **fixed)


def _braced(value) -> str:
    return escape_value(value).replace("{", "{{").replace("}", "}}")


ROW = """<tr>
      <td class="queue-lead-cell">
        <a class="fw-semibold queue-line" href="{lead_url}" title="{email}">{name}</a>
        <div class="small text-secondary queue-line">{title}{title_sep}{company}</div>
        <div class="small text-secondary queue-contact">{email}{phone}</div>
      </td>
      <td class="queue-stage">
        {stage}{deal}{stalled}
      </td>
      <td class="text-nowrap">{score}</td>
      <td class="small why-routed">
        {why}
      </td>
      <td class="small text-nowrap queue-activity">
        {activity}
      </td>
      <td class="text-nowrap">
        {sla}
      </td>
      <td class="queue-actions">
        <div class="queue-buttons">
        {actions}{slot}
        </div>
      </td>
    </tr>"""
# "Why routed": a short badge (the method, or the rule's name); the full reason on
# hover (title) and on a tap or click (details).
WHY = (
    '<details class="why-details"><summary class="badge text-bg-light border why-badge"'
    ' title="{reason}" data-testid="why-routed">{short}</summary>'
    '<div class="why-text">{reason}{team}</div></details>'
)
SHORT_METHOD = {
    "rule": "Rule",
    "round_robin": "Round robin",
    "least_loaded": "Least loaded",
    "account_owner": "Account owner",
    "default_team": "Default team",
    "manual": "By hand",
    "sla_reassign": "SLA reassigned",
}
DEAL = '\n        <div class="small text-secondary mt-1">{} {}</div>'
# A task is overdue and no next step is planned (pipeline.followups).
STALLED = mark_safe(
    '\n        <span class="badge text-bg-warning" data-testid="stalled-badge"'
    ' title="A task is overdue and no next step is planned">stalled</span>'
)
OVERDUE_TASK = mark_safe(
    '\n        <span class="badge text-bg-danger-subtle text-danger-emphasis"'
    ' data-testid="overdue-task-badge">task overdue</span>'
)
PHONE = ' · <a href="tel:{}">{}</a>'
TEAM = '<div class="text-secondary"><i class="bi bi-people"></i> {}</div>'
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
    """The row's action buttons (`row.actions`: its stage's), built once per page and
    open form with a stand-in for the row id, which each row replaces with its own."""
    key = (row.actions, open_action)
    if key not in urls.action_markup:
        urls.action_markup[key] = _stage_buttons(row.actions, urls, open_action)
    parts, pk = urls.action_markup[key], int(row.pk)
    # Every part is markup of this module with escaped values filled in.
    if parts is None:  # an action URL with no place to cut the id into: the row's own
        return mark_safe(_action_buttons(row.actions, urls, open_action, pk, urls.action))
    return mark_safe(str(pk).join(parts))


# Stands for the row id in a stage's buttons: no slug, label, icon or escaping makes it.
_ROW_ID = "\x00"


def _stage_buttons(actions, urls: QueueUrls, open_action: str) -> list[str] | None:
    """The buttons' markup cut where the row id goes (None: a URL cannot be cut)."""
    if any(urls.action_with_id(action.name, _ROW_ID) is None for action in actions):
        return None
    markup = _action_buttons(actions, urls, open_action, _ROW_ID, urls.action_with_id)
    return markup.split(_ROW_ID)


def _action_buttons(actions, urls: QueueUrls, open_action: str, pk, url_of) -> str:
    buttons = []
    for action in actions[:PRIMARY_ACTIONS]:
        if action.has_form:
            css = "btn-primary" if open_action == action.name else "btn-outline-primary"
            template = urls.button(FORM_LINK, action, css)
        else:
            template = urls.button(POST_BUTTON, action)
        buttons.append(template.format(url=escape_value(url_of(action.name, pk)), pk=pk))
    if actions[PRIMARY_ACTIONS:]:
        items = "\n            ".join(
            urls.button(MORE_ITEM, action).format(url=escape_value(url_of(action.name, pk)), pk=pk)
            for action in actions[PRIMARY_ACTIONS:]
        )
        buttons.append(MORE.format(items))
    return "\n        ".join(buttons)


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
    kind = urls.kind_label(row.last_activity_kind)
    try:  # the timesince filter
        since = urls.time_since(row.last_activity_at)
    except (ValueError, TypeError):
        since = ""
    # `{{ last_activity_at }}`: local time in the page's DATETIME_FORMAT (escaped by html).
    at = urls.datetime_format(template_localtime(row.last_activity_at))
    return html(ACTIVITY, kind, at, since)


def _task_badge(row) -> SafeString | str:
    if getattr(row, "is_stalled", False):
        return STALLED
    return OVERDUE_TASK if getattr(row, "has_overdue_task", False) else ""


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
        phone=html(PHONE, row.phone, row.phone) if row.phone else "",
        stage=stage_badge(row.stage, urls.stage_labels.get(row.stage, row.stage)),
        deal=html(DEAL, deal.currency, floatformat(deal.amount, "0g")) if deal else "",
        stalled=_task_badge(row),
        score=score_badges(row, urls.band_labels),
        why=_why(row),
        activity=_activity(row, urls),
        sla=_sla(row),
        actions=_actions(row, urls, open_action),
        slot=urls.row_slot(int(row.pk)),
    )


def _why(row) -> SafeString:
    method = getattr(row, "assignment_method", None)
    if not method:
        return _DASH
    rule = getattr(row, "assignment_rule", None)
    short = rule if method == "rule" and rule else SHORT_METHOD.get(method, method)
    return html(
        WHY,
        short=short,
        reason=row.assignment_reason or short,
        team=html(TEAM, row.team_name) if row.team_name else "",
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
