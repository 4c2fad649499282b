"""The rep queue ("My leads") and the quick actions on a lead.

Every action is one view (`lead_action`, `lead_handoff`) driven by a table of
actions: each names its form and the service it calls. From the queue the
actions run through htmx and answer with the lead's row (its new state, or the
form again with the error inline); without JavaScript they are plain pages that
redirect back with a message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils import timezone

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.errors import LeadflowError
from leadflow.core.redirects import safe_next
from leadflow.core.tenancy import get_tenant_object_or_404
from leads.models import Lead, LeadStage
from pipeline import selectors, services
from pipeline.errors import NotYourLead
from pipeline.forms import (
    AssignForm,
    CloseForm,
    FollowUpForm,
    OpportunityForm,
    QualificationForm,
    ReasonForm,
    RejectForm,
    TouchForm,
)
from pipeline.models import OpportunityStatus, Qualification
from pipeline.rows import QueueUrls, RowAction
from pipeline.views.common import back_to, policy_of, sla_status, workable_leads

QUEUE_PAGE_SIZE = 50


class NoOpportunity(LeadflowError):
    """Closing a deal on a lead that never became an opportunity."""


def action_links(lead, org_slug: str, names, urls: QueueUrls | None = None) -> list[dict]:
    """Buttons for a lead's actions: label, icon, URL, and whether a form opens first."""
    urls = urls or QueueUrls(org_slug)
    links = []
    for name in names:
        action = ACTIONS[name]
        links.append(
            {
                "name": name,
                "label": action.label,
                "icon": action.icon,
                "url": urls.action(name, lead.pk),
                "has_form": action.form is not None,
            }
        )
    return links


def row_columns(queue):
    """The queue with only the columns a row shows (pipeline/rows.py)."""
    return queue.only(*selectors.QUEUE_ROW_FIELDS)


def decorate_rows(rows, now, urls: QueueUrls) -> list:
    """Add the SLA badge and the stage's action buttons to each queue row."""
    rows = list(rows)
    for row in rows:
        row.sla = sla_status(due_at=row.sla_due_at, breached_at=row.breached_at, now=now)
        row.actions = ROW_BUTTONS.get(row.stage, ())
    return rows


@org_view(Perm.WORK_LEADS)
def queue(request):
    now = timezone.now()
    membership = request.membership
    counts = selectors.rep_queue_counts(membership=membership, now=now)
    # The header's count of the same leads gives the pages: no COUNT query.
    page = Paginator(range(counts["total"]), QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = selectors.rep_queue_page(
        membership=membership,
        now=now,
        offset=(page.number - 1) * QUEUE_PAGE_SIZE,
        limit=QUEUE_PAGE_SIZE,
    )
    urls = QueueUrls(request.organization.slug)
    context = {
        "page": page,
        "rows": decorate_rows(rows, now, urls),
        "queue_urls": urls,
        "counts": counts,
        "stages": [(s, LeadStage(s).label) for s in selectors.OPEN_STAGES],
    }
    return render(request, "pipeline/queue.html", context)


# --- Actions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    label: str
    icon: str
    form: Callable | None  # (request, lead, data) -> Form
    run: Callable  # (request, lead, form) -> success message
    submit: str = "Save"


def _default_currency(request) -> str:
    return policy_of(request.organization).default_currency


def _qualification_form(request, lead, data):
    instance = Qualification.objects.filter(lead=lead).first() or Qualification(
        organization=request.organization, lead=lead
    )
    return QualificationForm(data, instance=instance, default_currency=_default_currency(request))


def _run_accept(request, lead, form) -> str:
    services.lead_accept(lead=lead, actor=request.membership)
    return "Accepted — the lead is sales accepted (SAL). Make the first touch."


def _back_to_nurture(service: Callable, message: str) -> Callable:
    """Reject (an MQL) and recycle (later stages) both send the lead back with a reason code."""

    def run(request, lead, form) -> str:
        service(
            lead=lead,
            actor=request.membership,
            reason_code=form.cleaned_data["reason_code"],
            reason=form.reason_text(),
        )
        return message

    return run


_run_reject = _back_to_nurture(services.lead_reject, "Rejected — the lead went back to nurture.")
_run_recycle = _back_to_nurture(services.lead_recycle, "Recycled — the lead went back to nurture.")


def _run_touch(request, lead, form) -> str:
    fields = form.touch_fields()
    activity = services.lead_touch(lead=lead, actor=request.membership, **fields)
    done = f"{activity.get_kind_display()} logged."
    return done + (" Next step added to your tasks." if "next_step" in fields else "")


def _run_follow_up(request, lead, form) -> str:
    task = services.followup_create(actor=request.membership, lead=lead, **form.follow_up_fields())
    return f"Task “{task.title}” added."


def _run_qualify(request, lead, form) -> str:
    services.qualification_save(lead=lead, actor=request.membership, data=form.data_for_service())
    if request.POST.get("do") != "qualify":
        return "BANT notes saved."
    services.lead_qualify(lead=lead, actor=request.membership)
    return "Qualified — the lead is sales qualified (SQL)."


def _run_convert(request, lead, form) -> str:
    opportunity = services.opportunity_open(
        lead=lead, actor=request.membership, **form.deal_fields()
    )
    return f"Opportunity “{opportunity.name}” opened."


def closed_at_of(form) -> timezone.datetime | None:
    day = form.cleaned_data.get("closed_on")
    if day is None or day == timezone.localdate():
        return None  # now
    return timezone.make_aware(timezone.datetime.combine(day, timezone.datetime.min.time()))


def close_deal(request, opportunity, form) -> str:
    """Won or lost from a CloseForm (the queue row and the deal page share it)."""
    won = form.cleaned_data["outcome"] == OpportunityStatus.WON
    services.opportunity_close(
        opportunity=opportunity,
        actor=request.membership,
        won=won,
        reason=form.cleaned_data["reason"].strip(),
        closed_at=closed_at_of(form),
    )
    return "Marked won — congratulations!" if won else "Marked lost."


def _run_close(request, lead, form) -> str:
    opportunity = getattr(lead, "opportunity", None)
    if opportunity is None:
        raise NoOpportunity("This lead has no opportunity to close.")
    return close_deal(request, opportunity, form)


def _run_disqualify(request, lead, form) -> str:
    services.lead_disqualify(
        lead=lead, actor=request.membership, reason=form.cleaned_data["reason"].strip()
    )
    return "Disqualified — the lead left the funnel."


def _run_reopen(request, lead, form) -> str:
    services.lead_reopen(
        lead=lead, actor=request.membership, reason=form.cleaned_data["reason"].strip()
    )
    return "Reopened — the deal is an open opportunity again."


def _run_mark_mql(request, lead, form) -> str:
    services.lead_mark_mql_manual(
        lead=lead, actor=request.membership, reason=form.cleaned_data["reason"].strip()
    )
    return "Marked as MQL and routed."


def _run_assign(request, lead, form) -> str:
    rep = form.cleaned_data["membership"]
    services.lead_assign(
        lead=lead,
        membership=rep,
        actor=request.membership,
        reason=form.cleaned_data["reason"].strip(),
    )
    return f"Assigned to {rep.user.display_name}."


def _form(cls) -> Callable:
    return lambda request, lead, data: cls(data)


def _zoned(cls) -> Callable:
    """A form whose typed times are the organization's local time."""
    return lambda request, lead, data: cls(data, zone=request.organization.timezone)


def _follow_up_form(request, lead, data):
    return FollowUpForm(
        data,
        organization=request.organization,
        membership=request.membership,
        zone=request.organization.timezone,
    )


def _currency_form(cls) -> Callable:
    return lambda request, lead, data: cls(data, default_currency=_default_currency(request))


WORK_ACTIONS: dict[str, Action] = {
    "accept": Action("Accept", "check2-circle", None, _run_accept),
    "reject": Action("Reject", "x-circle", _form(RejectForm), _run_reject, "Reject lead"),
    "touch": Action("Log touch", "telephone", _zoned(TouchForm), _run_touch, "Log it"),
    "follow_up": Action("Task", "plus-square", _follow_up_form, _run_follow_up, "Add task"),
    "qualify": Action("BANT", "clipboard-check", _qualification_form, _run_qualify),
    "convert": Action(
        "Convert", "cash-coin", _currency_form(OpportunityForm), _run_convert, "Open opportunity"
    ),
    "close": Action("Won / lost", "trophy", _form(CloseForm), _run_close, "Close deal"),
    "recycle": Action("Recycle", "recycle", _form(RejectForm), _run_recycle, "Send to nurture"),
    "disqualify": Action(
        "Disqualify", "slash-circle", _form(ReasonForm), _run_disqualify, "Disqualify"
    ),
    "reopen": Action("Reopen", "arrow-counterclockwise", _form(ReasonForm), _run_reopen, "Reopen"),
}
HANDOFF_ACTIONS: dict[str, Action] = {
    "mark_mql": Action("Mark MQL", "megaphone", _form(ReasonForm), _run_mark_mql, "Mark as MQL"),
    "assign": Action(
        "Reassign",
        "person-check",
        lambda request, lead, data: AssignForm(data, organization=request.organization),
        _run_assign,
        "Assign",
    ),
}
ACTIONS = WORK_ACTIONS | HANDOFF_ACTIONS

# What the queue row offers per stage: main buttons, then the "more" menu.
ROW_ACTIONS: dict[str, tuple[str, ...]] = {
    LeadStage.MQL: ("accept", "reject", "touch", "follow_up", "disqualify"),
    LeadStage.SAL: ("touch", "qualify", "follow_up", "recycle", "disqualify"),
    LeadStage.SQL: ("touch", "convert", "follow_up", "qualify", "recycle", "disqualify"),
    LeadStage.OPPORTUNITY: ("touch", "close", "follow_up"),
}
ROW_BUTTONS: dict[str, tuple[RowAction, ...]] = {
    stage: tuple(
        RowAction(name, ACTIONS[name].label, ACTIONS[name].icon, ACTIONS[name].form is not None)
        for name in names
    )
    for stage, names in ROW_ACTIONS.items()
}


def _queue_row(request, lead_id: int, urls: QueueUrls):
    rows = decorate_rows(
        row_columns(selectors.rep_queue(membership=request.membership).filter(pk=lead_id)),
        timezone.now(),
        urls,
    )
    return rows[0] if rows else None


def _respond_row(request, lead, *, name="", form=None, error="", notice="", status=200):
    """The lead's queue row: its current state, with an open form or a notice."""
    urls = QueueUrls(request.organization.slug)
    context = {
        "row": _queue_row(request, lead.pk, urls),
        "queue_urls": urls,
        "lead": lead,
        "open_action": name,
        "action": ACTIONS.get(name),
        "form": form,
        "error": error,
        "notice": notice,
        "counts": selectors.rep_queue_counts(membership=request.membership, now=timezone.now()),
    }
    return render(request, "pipeline/partials/queue_row.html", context, status=status)


def _respond_page(request, lead, *, name, form, error="", status=200):
    context = {
        "lead": lead,
        "action": ACTIONS[name],
        "name": name,
        "form": form,
        "error": error,
        "next": safe_next(request),  # carried by the form, followed by back_to
    }
    return render(request, "pipeline/lead_action.html", context, status=status)


def _respond_team_row(request, lead, *, form=None, error="", notice=""):
    """The team page's unassigned-MQL row (the assign select posts from there)."""
    members = list(selectors.assignable_members(organization=request.organization))
    context = {"lead": lead, "form": form, "error": error, "notice": notice, "members": members}
    return render(request, "pipeline/partials/unassigned_row.html", context)


def _perform(request, lead: Lead, name: str, actions: dict[str, Action]):
    action = actions[name]
    if action.form is None and request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    data = request.POST if request.method == "POST" else None
    form = action.form(request, lead, data) if action.form else None
    swap = None
    if request.htmx:
        # htmx swaps only 2xx answers: errors come back inline in the swapped part.
        swap = _respond_team_row if request.POST.get("view") == "team" else _respond_row
    error = ""
    if request.method == "POST" and (form is None or form.is_valid()):
        try:
            message = action.run(request, lead, form)
        except NotYourLead as exc:
            raise Http404(str(exc)) from exc
        except LeadflowError as exc:
            error = str(exc)
        else:
            if swap:
                return swap(request, lead, notice=message)
            messages.success(request, message)
            return back_to(request, "pipeline:queue")
    if swap is _respond_team_row:
        return swap(request, lead, form=form, error=error)
    if swap:
        return swap(request, lead, name=name, form=form, error=error)
    failed = bool(error or (form is not None and form.errors))
    return _respond_page(
        request, lead, name=name, form=form, error=error, status=400 if failed else 200
    )


@org_view(Perm.WORK_LEADS)
def lead_action(request, lead_id: int, action: str):
    lead = get_tenant_object_or_404(
        workable_leads(request.membership).select_related("opportunity"), pk=lead_id
    )
    return _perform(request, lead, action, WORK_ACTIONS)


@org_view(Perm.ASSIGN_LEADS)
def lead_handoff(request, lead_id: int, action: str):
    lead = get_tenant_object_or_404(workable_leads(request.membership), pk=lead_id)
    return _perform(request, lead, action, HANDOFF_ACTIONS)


@org_view(Perm.WORK_LEADS)
def lead_row(request, lead_id: int):
    """The lead's queue row as it is (the Cancel of an open form)."""
    lead = get_tenant_object_or_404(workable_leads(request.membership), pk=lead_id)
    if not request.htmx:
        return redirect("pipeline:queue", org_slug=request.organization.slug)
    return _respond_row(request, lead)
