"""The lead list's row, built in Python (leadflow/core/rowhtml.py says why): its 50
rows through the template engine cost several times the page's SQL.

Markup is written as format strings filled by `leadflow.core.rowhtml.html`, which
escapes every value passed in: lead data is never marked safe.
"""

from __future__ import annotations

from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.defaultfilters import date, truncatechars
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime

from accounts.templatetags.ui import progress_bar
from leadflow.core.rowhtml import IdUrl, html, show
from leads.models import Channel

QUALITY_CLASSES = {"ok": "success", "suspect": "warning", "junk": "danger"}
DASH = "—"


def quality_badge(quality: str) -> SafeString:
    css = QUALITY_CLASSES.get(quality, "secondary")
    return html('<span class="badge text-bg-{}">{}</span>', css, quality)


class LeadRowUrls:
    """What the lead list's rows share: links reversed once per page (IdUrl), the
    source labels translated once."""

    def __init__(self, org_slug: str) -> None:
        self.lead = IdUrl("leads:lead_detail", "lead_id", org_slug=org_slug)
        self.company = IdUrl("leads:company_detail", "company_id", org_slug=org_slug)
        self.sources = {value: str(label) for value, label in Channel.choices}


ROW = """<tr>
                      {check}
                      <td>
                        <a class="fw-semibold" href="{lead_url}">{name}</a>
                        <div class="small text-secondary">{email}{title}</div>
                      </td>
                      <td>{company}</td>
                      <td>{country}</td>
                      <td class="small">{source}{campaign}</td>
                      <td class="small">{owner}</td>
                      <td class="text-nowrap">
                        {score}
                      </td>
                      <td>{quality}</td>
                      <td class="small text-secondary" title="{created_title}">{created}</td>
                    </tr>"""
CHECK = (
    '<td><input class="form-check-input lead-check" type="checkbox" name="lead_ids" value="{}"'
    ' aria-label="Select {}"></td>'
)
COMPANY = '<a href="{}">{}</a>'
CAMPAIGN = '<div class="text-secondary">{}</div>'
SCORE = (
    '<span class="fw-semibold">{}</span> <span class="text-secondary small">{}</span>'
    ' <span class="badge band-{}">{}</span>{}'
)
MQL = mark_safe(' <span class="badge text-bg-success">MQL</span>')
UNSCORED = mark_safe('<span class="text-secondary">—</span>')


def _score(lead) -> SafeString:
    if not lead.scored_at:
        return UNSCORED
    mql = MQL if lead.mql_eligible else ""
    return html(SCORE, show(lead.score), lead.grade, lead.band, lead.band, mql)


def lead_row(lead, *, urls: LeadRowUrls, can_edit: bool) -> SafeString:
    """One <tr> of the lead list (with its select box for those who may edit)."""
    company = lead.company
    if company:
        company_cell = html(COMPANY, urls.company(lead.company_id), company)
    else:
        company_cell = lead.company_name or DASH
    campaign = lead.first_campaign
    owner = lead.owner
    return html(
        ROW,
        check=html(CHECK, lead.pk, lead) if can_edit else "",
        lead_url=urls.lead(lead.pk),
        name=lead.full_name or lead.email or lead.external_id,
        email=lead.email or "no email",
        title=html(" · {}", truncatechars(lead.title, 40)) if lead.title else "",
        company=company_cell,
        country=lead.country or DASH,
        source=urls.sources.get(lead.first_source, lead.first_source) or DASH,
        campaign=html(CAMPAIGN, truncatechars(campaign.name, 30)) if campaign else "",
        owner=(owner.user.display_name if owner else "") or DASH,
        score=_score(lead),
        quality=quality_badge(lead.quality),
        created_title=show(lead.created_at),
        created=date(template_localtime(lead.created_at), "M j, Y"),
    )


IMPORT_STATUS = '<span class="badge text-bg-{}"{}>{}</span>'
STALLED = mark_safe(' data-testid="import-stalled"')
IMPORT_CSS = {"queued": "info", "running": "primary", "done": "success"}


def import_status(job) -> SafeString:
    """An import job's status badge (the import list's rows and the job's page)."""
    if job.status == "uploaded":
        return html(IMPORT_STATUS, "secondary", "", "Needs mapping")
    if job.stalled:
        label = "Stalled — resuming" if job.status == "running" else "Queued — not picked up"
        return html(IMPORT_STATUS, "warning", STALLED, label)
    if job.status in IMPORT_CSS:
        return html(IMPORT_STATUS, IMPORT_CSS[job.status], "", job.get_status_display())
    return html(IMPORT_STATUS, "danger", "", job.get_status_display())


PROGRESS_ROWS = """<div class="small text-secondary">{} of {} rows</div>"""


def import_progress(job, *, compact: bool = False) -> SafeString:
    """An import job's progress bar and row counts (compact: the import list's rows)."""
    bar = progress_bar(
        job.percent,
        label="Import progress",
        state="stalled" if job.stalled else job.status,
        size=" mb-1 progress-h-xs" if compact else " progress-h-lg",
        text="" if compact else f"{job.percent}%",
    )
    return bar + html(PROGRESS_ROWS, intcomma(job.processed_rows), intcomma(job.total_rows))
