"""The organization navigation: an entry appears only when the member's role
holds the permission its page declares."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from accounts.permissions import Perm


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    icon: str
    permission: Perm


NAV: list[NavEntry] = [
    NavEntry("Overview", "accounts:org_home", "speedometer2", Perm.VIEW_DASHBOARD),
    NavEntry("My leads", "pipeline:queue", "inbox", Perm.WORK_LEADS),
    NavEntry("Leads", "leads:lead_list", "person-lines-fill", Perm.VIEW_LEADS),
    NavEntry("Opportunities", "pipeline:board", "kanban", Perm.VIEW_PIPELINE),
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
    current = request.path
    items = []
    for entry in NAV:
        if not membership.has_perm(entry.permission):
            continue
        url = reverse(entry.url_name, kwargs={"org_slug": slug})
        active = (
            current == url if entry.url_name == "accounts:org_home" else current.startswith(url)
        )
        items.append({"label": entry.label, "url": url, "icon": entry.icon, "active": active})
    return items
