"""The lead list's row, built in Python (leadflow/core/rowhtml.py says why): its 50
rows through the template engine cost several times the page's SQL.

Markup is written as format strings filled by `leadflow.core.rowhtml.html`, which
escapes every value passed in: lead data is never marked safe.
"""

from __future__ import annotations

from html import escape

from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.defaultfilters import truncatechars
from django.utils.formats import get_format
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime

from accounts.templatetags.ui import progress_bar
from leadflow.core.rowhtml import IdUrl, date_format, html, show
from leads.models import Channel
from leads.selectors import ListLabels

QUALITY_CLASSES = {"ok": "success", "suspect": "warning", "junk": "danger"}
DASH = "—"


def quality_badge(quality: str) -> SafeString:
    css = QUALITY_CLASSES.get(quality, "secondary")
    return html('<span class="badge text-bg-{}">{}</span>', css, quality)


class LeadRowUrls:
    """What the lead list's rows share: links reversed once per page (IdUrl), the
    source labels translated once, the date formats compiled once per process."""

    def __init__(self, org_slug: str, labels: ListLabels) -> None:
        self.owners, self.campaigns = labels.owners, labels.campaigns
        self.lead = IdUrl("leads:lead_detail", "lead_id", org_slug=org_slug)
        self.company = IdUrl("leads:company_detail", "company_id", org_slug=org_slug)
        self.sources = {value: str(label) for value, label in Channel.choices}
        self.created_title = date_format(get_format("DATETIME_FORMAT"))  # as {{ value }}
        self.created = date_format("M j, Y")


# Below md the rows are cards (static/css/app.css, .lead-table): each cell names
# itself (data-label) and an empty one is not shown there (EMPTY).
ROW = """<tr>
                      {check}
                      <td class="lead-name">
                        <a class="fw-semibold" href="{lead_url}">{name}</a>
                        <div class="small text-secondary">{email}{title}</div>
                      </td>
                      <td data-label="Company"{company_empty}>{company}</td>
                      <td data-label="Country"{country_empty}>{country}</td>
                      <td class="small{source_empty}" data-label="Source">{source}{campaign}</td>
                      <td class="small{owner_empty}" data-label="Owner">{owner}</td>
                      <td class="text-nowrap" data-label="Score">
                        {score}
                      </td>
                      <td data-label="Quality">{quality}</td>
                      <td class="small text-secondary" data-label="Created"
                          title="{created_title}">{created}</td>
                    </tr>"""
EMPTY = " d-none d-md-table-cell"
EMPTY_ATTR = f' class="{EMPTY.strip()}"'
CHECK = (
    '<td><input class="form-check-input lead-check" type="checkbox" name="lead_ids" value="{}"'
    ' aria-label="Select {}"></td>'
)
SCORE = (
    '<span class="fw-semibold">{}</span> <span class="text-secondary small">{}</span>'
    ' <span class="badge band-{}">{}</span>{}'
)
MQL = ' <span class="badge text-bg-success">MQL</span>'
UNSCORED = '<span class="text-secondary">—</span>'
QUALITY = '<span class="badge text-bg-{}">{}</span>'


def _short(text: str, length: int) -> str:
    """`truncatechars`; a text this short is never cut, so Truncator runs only on long ones."""
    return text if len(text) <= length else truncatechars(text, length)


def _score(lead) -> str:
    if not lead.scored_at:
        return UNSCORED
    mql = MQL if lead.mql_eligible else ""
    band = escape(lead.band)
    return SCORE.format(show(lead.score), escape(lead.grade), band, band, mql)


def lead_row(lead, *, urls: LeadRowUrls, can_edit: bool) -> SafeString:
    """One <tr> of the lead list (with its select box for those who may edit), from
    a row of leads.selectors.lead_list_rows (its columns by name, no model).

    The hottest markup of the page: one format string, every value passed through
    `escape` (lead data is hostile input, never marked safe)."""
    pk = lead.pk
    full_name = f"{lead.first_name} {lead.last_name}".strip()  # Lead.full_name
    name = full_name or lead.email or lead.external_id
    label = full_name or lead.email or f"#{lead.external_id}"  # str(Lead)
    if lead.company_id:  # str(Company)
        company = lead.company__name or lead.company__domain or f"Company {lead.company_id}"
        company_cell = f'<a href="{urls.company(lead.company_id)}">{escape(company)}</a>'
    else:
        company_cell = escape(lead.company_name or DASH)
    campaign = urls.campaigns.get(lead.first_campaign_id)
    source = urls.sources.get(lead.first_source, lead.first_source)
    owner = urls.owners.get(lead.owner_id)
    quality = lead.quality
    created = template_localtime(lead.created_at)
    return SafeString(
        ROW.format(
            check=CHECK.format(pk, escape(label)) if can_edit else "",
            lead_url=urls.lead(pk),
            name=escape(name),
            email=escape(lead.email or "no email"),
            title=f" · {escape(_short(lead.title, 40))}" if lead.title else "",
            company=company_cell,
            company_empty="" if lead.company_id or lead.company_name else EMPTY_ATTR,
            country=escape(lead.country or DASH),
            country_empty="" if lead.country else EMPTY_ATTR,
            source=escape(source or DASH),
            source_empty="" if source or campaign else EMPTY,
            campaign=(
                f'<div class="text-secondary">{escape(_short(campaign, 30))}</div>'
                if campaign
                else ""
            ),
            owner=escape(owner or DASH),
            owner_empty="" if owner else EMPTY,
            score=_score(lead),
            quality=QUALITY.format(QUALITY_CLASSES.get(quality, "secondary"), escape(quality)),
            created_title=escape(urls.created_title(created)),
            created=escape(urls.created(created)),
        )
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
