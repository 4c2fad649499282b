"""The privacy panel on the lead detail page (admins): export the person's data,
erase them (registered in apps.py on leadflow.core.hooks.lead_detail_panels)."""

from __future__ import annotations

from accounts.permissions import Perm


def privacy_panel(request, lead) -> dict | None:
    membership = getattr(request, "membership", None)
    if membership is None or not membership.has_perm(Perm.MANAGE_ORGANIZATION):
        return None
    return {"template": "privacy/partials/lead_panel.html", "lead": lead}
