"""The leads panel of the organization overview (registered in apps.py)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from accounts.permissions import Perm
from leads import selectors
from leads.models import Quality


def leads_panel(request) -> dict | None:
    membership = request.membership
    if not membership.has_perm(Perm.VIEW_LEADS):
        return None
    week_ago = timezone.now() - timedelta(days=7)
    leads = selectors.visible_leads(membership=membership)
    counts = leads.aggregate(
        total=Count("pk"),
        new_week=Count("pk", filter=Q(created_at__gte=week_ago)),
        mql=Count("pk", filter=Q(mql_eligible=True)),
        review=Count(
            "pk",
            filter=Q(quality__in=[Quality.JUNK, Quality.SUSPECT], reviewed_at__isnull=True),
        ),
    )
    recent = list(leads.select_related("company").order_by("-created_at")[:6])
    return {"template": "leads/partials/home_panel.html", "counts": counts, "recent": recent}
