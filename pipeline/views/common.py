"""Helpers the pipeline views share: lead lookups that keep reps to their own
leads, the policy read, SLA badges, and the safe "back to" redirect."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.urls import reverse

from accounts.models import Role
from leadflow.core.redirects import redirect_next
from leads.models import Lead
from pipeline.models import PipelinePolicy
from pipeline.policy import policy_get


def workable_leads(membership) -> QuerySet[Lead]:
    """Leads this member may act on: reps only their own (another rep's lead is a 404)."""
    qs = Lead.objects.filter(merged_into__isnull=True, discarded_at__isnull=True)
    if membership.role == Role.SALES_REP:
        qs = qs.filter(owner=membership)
    return qs


def policy_of(organization) -> PipelinePolicy:
    return policy_get(organization_id=organization.pk)


def _span(delta: dt.timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{hours // 24}d"


def sla_status(*, due_at, breached_at, now) -> dict | None:
    """The queue's SLA badge: "due in 12m", "overdue 5m" (red once breached or past due)."""
    if due_at is None and breached_at is None:
        return None
    if due_at is None or due_at <= now:
        since = now - (due_at or breached_at)
        return {"text": f"overdue {_span(since)}", "css": "text-bg-danger", "overdue": True}
    left = due_at - now
    css = "text-bg-warning" if left <= dt.timedelta(minutes=15) else "text-bg-light border"
    return {"text": f"due in {_span(left)}", "css": css, "overdue": False}


def back_to(request, default_name: str, **kwargs):
    """Redirect to the form's `next` when it is ours, else to a named pipeline page."""
    default = reverse(default_name, kwargs={"org_slug": request.organization.slug, **kwargs})
    return redirect_next(request, default)
