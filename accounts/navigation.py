"""The organization navigation: an entry appears only when the member's role
holds the permission its page declares.

Exactly one entry is current on a page (aria-current="page"): the one that owns
the page's URL name (`owns`), else the entry with the longest URL the page's path
starts with ("Needs review" at /leads/review/, not "Leads" too)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.safestring import SafeString, mark_safe

from accounts.layout import org_url
from accounts.permissions import Perm
from leadflow.core.rowhtml import html


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    icon: str
    permission: Perm
    # URL names (or prefixes of them ending in "_") of pages outside the entry's
    # path that belong to it, e.g. one deal's page belongs to "Opportunities".
    owns: tuple[str, ...] = ()

    def owns_page(self, view_name: str) -> bool:
        return any(
            view_name == name or (name.endswith("_") and view_name.startswith(name))
            for name in self.owns
        )


NAV: list[NavEntry] = [
    NavEntry("Overview", "accounts:org_home", "speedometer2", Perm.VIEW_DASHBOARD),
    NavEntry("My leads", "pipeline:queue", "inbox", Perm.WORK_LEADS),
    NavEntry("My day", "pipeline:my_day", "calendar-check", Perm.WORK_LEADS),
    NavEntry("Leads", "leads:lead_list", "person-lines-fill", Perm.VIEW_LEADS),
    NavEntry(
        "Opportunities",
        "pipeline:board",
        "kanban",
        Perm.VIEW_PIPELINE,
        owns=("pipeline:opportunity", "pipeline:board_"),
    ),
    NavEntry("Team", "pipeline:team", "people-fill", Perm.VIEW_TEAM),
    NavEntry("Reports", "reports:marketing", "graph-up-arrow", Perm.VIEW_REPORTS),
    NavEntry("Needs review", "leads:review_list", "shield-exclamation", Perm.REVIEW_LEADS),
    NavEntry("Companies", "leads:company_list", "buildings", Perm.VIEW_LEADS),
    NavEntry("Capture forms", "leads:form_list", "ui-checks", Perm.MANAGE_FORMS),
    NavEntry("Campaigns", "leads:campaign_list", "megaphone", Perm.MANAGE_CAMPAIGNS),
    NavEntry("Nurture", "nurture:index", "envelope-paper-heart", Perm.MANAGE_NURTURE),
    NavEntry("Imports", "leads:import_list", "cloud-upload", Perm.IMPORT_LEADS),
    NavEntry("Scoring", "scoring:rule_list", "bar-chart-steps", Perm.MANAGE_SCORING),
    NavEntry("Routing & SLA", "pipeline:settings", "signpost-split", Perm.MANAGE_ROUTING),
    NavEntry("Members", "accounts:members", "people", Perm.MANAGE_MEMBERS),
    NavEntry("API keys", "accounts:apikey_list", "key", Perm.MANAGE_API_KEYS),
    NavEntry("Settings", "accounts:org_settings", "gear", Perm.MANAGE_ORGANIZATION),
    NavEntry("Privacy", "privacy:index", "shield-lock", Perm.MANAGE_ORGANIZATION),
    NavEntry("Audit log", "audit:log", "journal-text", Perm.MANAGE_ORGANIZATION),
]


def navigation_for(request, membership) -> list[dict]:
    if membership is None:
        return []
    slug = membership.organization.slug
    match = getattr(request, "resolver_match", None)
    entries = [
        (entry, org_url(entry.url_name, slug))
        for entry in NAV
        if membership.has_perm(entry.permission)
    ]
    current = _current(entries, request.path, match.view_name if match else "")
    return [
        {"label": entry.label, "url": url, "icon": entry.icon, "active": entry is current}
        for entry, url in entries
    ]


def _current(entries: list[tuple[NavEntry, str]], path: str, view_name: str) -> NavEntry | None:
    """The one entry the page belongs to, or None (a page of no section)."""
    for entry, _url in entries:
        if view_name and entry.owns_page(view_name):
            return entry
    best, best_url = None, ""
    for entry, url in entries:
        hit = path == url if entry.url_name == "accounts:org_home" else path.startswith(url)
        if hit and len(url) > len(best_url):
            best, best_url = entry, url
    return best


# One entry of partials/sidebar.html's list, as its former {% for %} loop wrote it.
NAV_ITEM = """
        <li class="nav-item">
          <a class="nav-link {active}"
             href="{url}"
             {current}>
            <i class="bi bi-{icon} me-2" aria-hidden="true"></i>{label}
          </a>
        </li>
      """
CURRENT = mark_safe('aria-current="page"')


def navigation_html(items: list[dict]) -> SafeString:
    """The sidebar's entries built in Python: on every page, a loop of a dozen
    entries through the template engine cost more than the rest of the sidebar."""
    return SafeString(
        "".join(
            html(
                NAV_ITEM,
                active="active" if item["active"] else "",
                url=item["url"],
                current=CURRENT if item["active"] else "",
                icon=item["icon"],
                label=item["label"],
            )
            for item in items
        )
    )


class LazyHtml:
    """Markup made when a template prints it (a page without a sidebar never does)."""

    def __init__(self, make: Callable[[], SafeString]) -> None:
        self._make, self._made = make, None

    def __html__(self) -> SafeString:
        if self._made is None:
            self._made = self._make()
        return self._made

    __str__ = __html__
