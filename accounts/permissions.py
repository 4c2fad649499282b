"""The one permission table: which role may do what.

Every view declares the permission it needs with one of the decorators in
accounts.decorators; a test walks the URL conf and fails on a view without one.
"""

from __future__ import annotations

from enum import StrEnum

from accounts.models import Role


class Perm(StrEnum):
    # Pseudo-permissions for views outside an organization.
    PUBLIC = "public"  # anyone, signed in or not (landing, hosted forms, tracking)
    AUTHENTICATED = "authenticated"  # any signed-in user (org switcher, create org)

    VIEW_DASHBOARD = "view_dashboard"
    # Every member: their own notifications (bell, list, email preferences).
    RECEIVE_NOTIFICATIONS = "receive_notifications"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_ORGANIZATION = "manage_organization"
    MANAGE_API_KEYS = "manage_api_keys"

    # Leads. Sales reps see only the leads they own (the selectors filter).
    VIEW_LEADS = "view_leads"
    EDIT_LEADS = "edit_leads"
    REVIEW_LEADS = "review_leads"  # needs-review queue, duplicates, manual merge
    EXPORT_LEADS = "export_leads"
    IMPORT_LEADS = "import_leads"
    MANAGE_FORMS = "manage_forms"
    MANAGE_CAMPAIGNS = "manage_campaigns"

    # Scoring rules, thresholds and gating change every lead's score: admins only.
    MANAGE_SCORING = "manage_scoring"

    # Pipeline. Reps work their own queue; admins see every rep's load.
    WORK_LEADS = "work_leads"  # accept/reject, log touches, BANT, opportunities
    VIEW_PIPELINE = "view_pipeline"  # opportunity board (reps: their own)
    ASSIGN_LEADS = "assign_leads"  # reassign by hand, mark MQL by hand
    VIEW_TEAM = "view_team"  # team load, breaches, unassigned MQLs
    MANAGE_ROUTING = "manage_routing"  # teams, routing rules, SLA policy, BANT policy

    # Nurture: lists, templates, sequences, outbox.
    MANAGE_NURTURE = "manage_nurture"

    # Reports: everyone reads; reps see their own and their team's numbers.
    VIEW_REPORTS = "view_reports"


_MARKETING = {
    Perm.VIEW_DASHBOARD,
    Perm.RECEIVE_NOTIFICATIONS,
    Perm.VIEW_LEADS,
    Perm.EDIT_LEADS,
    Perm.REVIEW_LEADS,
    Perm.EXPORT_LEADS,
    Perm.IMPORT_LEADS,
    Perm.MANAGE_FORMS,
    Perm.MANAGE_CAMPAIGNS,
    Perm.VIEW_PIPELINE,
    Perm.ASSIGN_LEADS,
    Perm.MANAGE_NURTURE,
    Perm.VIEW_REPORTS,
}

ORG_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.ADMIN: frozenset(
        {
            *_MARKETING,
            Perm.MANAGE_MEMBERS,
            Perm.MANAGE_ORGANIZATION,
            Perm.MANAGE_API_KEYS,
            Perm.MANAGE_SCORING,
            Perm.WORK_LEADS,
            Perm.VIEW_TEAM,
            Perm.MANAGE_ROUTING,
        }
    ),
    Role.MARKETER: frozenset(_MARKETING),
    Role.SALES_REP: frozenset(
        {
            Perm.VIEW_DASHBOARD,
            Perm.RECEIVE_NOTIFICATIONS,
            Perm.VIEW_LEADS,
            Perm.WORK_LEADS,
            Perm.VIEW_PIPELINE,
            Perm.VIEW_REPORTS,
        }
    ),
}


def role_has_perm(role: str, permission: str) -> bool:
    return permission in ORG_PERMISSIONS.get(role, frozenset())
