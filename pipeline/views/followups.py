"""A rep's tasks: "My day" (overdue, due today, the next 7 days), a task's edit
page, complete / reopen (htmx swaps the task's line), and a task on a deal.

Tasks on a lead are created through the lead's "Task" action (queue.py), which
the queue row, the lead page and the log-a-touch form's next step share.
Times are shown and typed in the organization's time zone.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.contrib import messages
from django.db.models import Q
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import org_view
from accounts.models import Role
from accounts.permissions import Perm
from leadflow.core.errors import LeadflowError
from leadflow.core.redirects import safe_next
from leadflow.core.tenancy import get_tenant_object_or_404
from pipeline import services
from pipeline.errors import NotYourLead
from pipeline.followups import my_day as my_day_of
from pipeline.followups import workable_follow_ups
from pipeline.forms import FollowUpForm
from pipeline.models import FollowUp, Opportunity
from pipeline.views.common import back_to


def _zone(request) -> ZoneInfo:
    return ZoneInfo(request.organization.timezone or "UTC")


def _follow_up(request, follow_up_id: int) -> FollowUp:
    qs = workable_follow_ups(request.membership).select_related(
        "lead", "opportunity__lead", "assignee__user"
    )
    return get_tenant_object_or_404(qs, pk=follow_up_id)


def _form(request, data=None, initial=None) -> FollowUpForm:
    return FollowUpForm(
        data,
        initial=initial,
        organization=request.organization,
        membership=request.membership,
        zone=request.organization.timezone,
    )


@require_GET
@org_view(Perm.WORK_LEADS)
def my_day(request):
    with timezone.override(_zone(request)):
        day = my_day_of(
            membership=request.membership,
            now=timezone.now(),
            zone=request.organization.timezone,
        )
        return render(request, "pipeline/my_day.html", {"day": day})


@require_POST
@org_view(Perm.WORK_LEADS)
def follow_up_complete(request, follow_up_id: int):
    return _set_done(request, follow_up_id, services.followup_complete, "Task done.")


@require_POST
@org_view(Perm.WORK_LEADS)
def follow_up_reopen(request, follow_up_id: int):
    return _set_done(request, follow_up_id, services.followup_reopen, "Task reopened.")


def _set_done(request, follow_up_id: int, service, message: str):
    task = _follow_up(request, follow_up_id)
    try:
        task = service(follow_up=task, actor=request.membership)
    except NotYourLead as exc:
        raise Http404(str(exc)) from exc
    if request.htmx:
        with timezone.override(_zone(request)):
            context = {
                "task": task,
                "now": timezone.now(),
                "notice": message,
                "show_subject": bool(request.POST.get("show_subject")),  # My day links it
            }
            return render(request, "pipeline/partials/follow_up_item.html", context)
    messages.success(request, message)
    return back_to(request, "pipeline:my_day")


def _form_page(request, *, initial, save, default: tuple, **context):
    """The task form page: `save(form)` runs the service and says what it did."""
    with timezone.override(_zone(request)):
        form = _form(request, request.POST if request.method == "POST" else None, initial)
        error = ""
        if request.method == "POST" and form.is_valid():
            try:
                message = save(form)
            except NotYourLead as exc:
                raise Http404(str(exc)) from exc
            except LeadflowError as exc:
                error = str(exc)
            else:
                messages.success(request, message)
                name, kwargs = default
                return back_to(request, name, **kwargs)
        context |= {"form": form, "error": error, "next": safe_next(request)}
        status = 400 if error or form.errors else 200
        return render(request, "pipeline/follow_up_form.html", context, status=status)


@org_view(Perm.WORK_LEADS)
def follow_up_edit(request, follow_up_id: int):
    task = _follow_up(request, follow_up_id)

    def save(form) -> str:
        services.followup_update(
            follow_up=task, actor=request.membership, **form.follow_up_fields()
        )
        return "Task saved."

    local_due = timezone.localtime(task.due_at, _zone(request))
    initial = {
        "kind": task.kind,
        "title": task.title,
        "due_at": local_due.strftime("%Y-%m-%dT%H:%M"),
        "notes": task.notes,
        "assignee": task.assignee_id,
    }
    return _form_page(
        request, initial=initial, save=save, default=("pipeline:my_day", {}), task=task
    )


@org_view(Perm.WORK_LEADS)
def opportunity_follow_up(request, opportunity_id: int):
    """A task on a deal (the deal's page links here). Reps reach only their own deals."""
    deals = Opportunity.objects.select_related("lead")
    if request.membership.role == Role.SALES_REP:
        deals = deals.filter(Q(owner=request.membership) | Q(lead__owner=request.membership))
    opportunity = get_tenant_object_or_404(deals, pk=opportunity_id)

    def save(form) -> str:
        task = services.followup_create(
            actor=request.membership, opportunity=opportunity, **form.follow_up_fields()
        )
        return f"Task “{task.title}” added."

    default = ("pipeline:opportunity", {"opportunity_id": opportunity.pk})
    return _form_page(
        request, initial=None, save=save, default=default, task=None, opportunity=opportunity
    )
