"""The pipeline panel on the lead detail page: stage, why routed and the SLA,
BANT, the opportunity, the stage history, and the actions this member may take
(registered in apps.py on leadflow.core.hooks.lead_detail_panels), and the sales
rep's home page (leadflow.core.hooks.role_home)."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from accounts.permissions import Perm
from leads.models import LeadStage
from pipeline.followups import lead_follow_ups
from pipeline.forms import FollowUpForm
from pipeline.models import OPEN_STAGES, Bant
from pipeline.policy import policy_get
from pipeline.selectors import lead_pipeline
from pipeline.views.common import sla_status
from pipeline.views.queue import ROW_ACTIONS, action_links

MQL_FROM = (LeadStage.NEW, LeadStage.RECYCLED)


def _actions(membership, lead) -> list[dict]:
    names: list[str] = []
    own = membership.role != Role.SALES_REP or lead.owner_id == membership.pk
    if membership.has_perm(Perm.WORK_LEADS) and own:
        names += ROW_ACTIONS.get(lead.stage, ())
        if lead.stage == LeadStage.LOST:
            names.append("reopen")
    if membership.has_perm(Perm.ASSIGN_LEADS):
        if lead.stage in MQL_FROM:
            names.append("mark_mql")
        if lead.stage in OPEN_STAGES:
            names.append("assign")
    links = action_links(lead, membership.organization.slug, names)
    detail = reverse(
        "leads:lead_detail", kwargs={"org_slug": membership.organization.slug, "lead_id": lead.pk}
    )
    for link in links:
        link["url"] += f"?next={detail}"  # the action page comes back here when done
    return links


def pipeline_panel(request, lead) -> dict | None:
    membership = getattr(request, "membership", None)
    if membership is None:
        return None
    policy = policy_get(organization_id=lead.organization_id)
    data = lead_pipeline(lead=lead, policy=policy)
    assignment = data.assignment
    sla = None
    if assignment and lead.stage in OPEN_STAGES:
        sla = sla_status(
            due_at=assignment.sla_due_at(), breached_at=assignment.breached_at, now=timezone.now()
        )
    done = data.qualification.completed() if data.qualification else set()
    return {
        "template": "pipeline/partials/lead_panel.html",
        "lead": lead,
        "data": data,
        "sla": sla,
        "bant": [
            {"key": key, "label": label, "done": key in done, "required": key in data.bant_required}
            for key, label in Bant.choices
        ],
        "actions": _actions(membership, lead),
        **_tasks(membership, lead),
    }


def _tasks(membership, lead) -> dict:
    """The tasks card: the lead's tasks and stalled flag, and the form for a new one
    (posted to the lead's "Task" action) when this member may work the lead."""
    now = timezone.now()
    own = membership.role != Role.SALES_REP or lead.owner_id == membership.pk
    can_add = membership.has_perm(Perm.WORK_LEADS) and own and lead.stage in OPEN_STAGES
    form = None
    if can_add:
        form = FollowUpForm(organization=membership.organization, membership=membership)
    return {
        "now": now,
        "tasks": lead_follow_ups(lead=lead, now=now),
        "task_form": form,
        "task_url": reverse(
            "pipeline:lead_follow_up",
            kwargs={"org_slug": membership.organization.slug, "lead_id": lead.pk},
        ),
    }


def rep_queue_home(role: str) -> str | None:
    """A sales rep's home is their lead queue."""
    return "pipeline:queue" if role == Role.SALES_REP else None
