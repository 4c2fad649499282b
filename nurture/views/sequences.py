"""Sequences: the index, settings (triggers, exits, send window, sender), the
step builder, enrolling a list, the enrollments table with pause/resume/stop,
and the per-step report."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import render
from django.template.defaultfilters import pluralize
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.errors import LeadflowError
from leadflow.core.formpage import form_page
from leadflow.core.tenancy import get_tenant_object_or_404
from nurture import selectors
from nurture.forms import EnrollForm, SequenceForm, StepForm
from nurture.models import (
    Enrollment,
    EnrollmentStatus,
    ExitCondition,
    ListMembership,
    Sequence,
    SequenceStep,
    Trigger,
)
from nurture.services import enrollments as enrollment_services
from nurture.services import sequences as sequence_services
from nurture.views.common import paginate, settings_page, to

REPORT_COLUMNS = [
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("opened", "Opened"),
    ("clicked", "Clicked"),
    ("unsubscribed", "Unsubscribed"),
    ("bounced", "Bounced"),
    ("converted", "Became MQL"),
]


def _sequence(sequence_id: int) -> Sequence:
    return get_tenant_object_or_404(Sequence, pk=sequence_id)


def _step(step_id: int) -> SequenceStep:
    return get_tenant_object_or_404(
        SequenceStep.objects.select_related("sequence", "template"), pk=step_id
    )


@require_GET
@org_view(Perm.MANAGE_NURTURE)
def sequence_list(request):
    context = {"tab": "sequences", "sequences": selectors.sequences_for_index()}
    return render(request, "nurture/sequence_list.html", context)


def _settings_page(request, sequence: Sequence | None):
    form = SequenceForm(request.POST or None, sequence=sequence)
    context = {"tab": "sequences", "sequence": sequence}
    return settings_page(
        request, form, service=sequence_services.sequence_save, instance={"sequence": sequence},
        noun="Sequence", then="sequence_detail", template="nurture/sequence_form.html",
        context=context,
    )  # fmt: skip


@org_view(Perm.MANAGE_NURTURE)
def sequence_create(request):
    return _settings_page(request, None)


@org_view(Perm.MANAGE_NURTURE)
def sequence_edit(request, sequence_id: int):
    return _settings_page(request, _sequence(sequence_id))


def _describe(sequence: Sequence) -> dict:
    """Triggers, exits and the window in words, for the builder's summary card."""
    list_names = {lst.pk: lst.name for lst in selectors.lists_for_index()}
    triggers = []
    for trigger in sequence.entry_triggers or []:
        kind = trigger.get("type")
        if kind == Trigger.JOINS_LIST:
            triggers.append(f"Joins {list_names.get(trigger.get('list_id'), 'a deleted list')}")
        elif kind == Trigger.FORM:
            triggers.append("Is created by a capture form")
        elif kind == Trigger.RECYCLED:
            triggers.append("Is recycled")
    exits = [ExitCondition(e).label for e in sequence.exit_on or [] if e in ExitCondition.values]
    window = sequence.send_window
    days = ""
    if window:
        names = dict(enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]))
        days = ", ".join(names[d] for d in window.get("days", []) if d in names)
    return {"triggers": triggers, "exits": exits, "window_days": days}


def _builder(request, sequence: Sequence, *, step_form=None, enroll_form=None, status=200):
    status_filter = request.GET.get("status", "")
    enrollments = selectors.enrollments_for(sequence=sequence, status=status_filter)
    counts = selectors.enrollment_counts(sequence=sequence)
    context = {
        "tab": "sequences",
        "sequence": sequence,
        "steps": selectors.sequence_steps(sequence=sequence),
        "step_form": step_form or StepForm(),
        "enroll_form": enroll_form or EnrollForm(),
        "counts": counts,
        "statuses": [(v, label, counts[v]) for v, label in EnrollmentStatus.choices],
        "status_filter": status_filter,
        "page": paginate(request, enrollments),
        **_describe(sequence),
    }
    return render(request, "nurture/sequence_detail.html", context, status=status)


@require_GET
@org_view(Perm.MANAGE_NURTURE)
def sequence_detail(request, sequence_id: int):
    return _builder(request, _sequence(sequence_id))


@require_POST
@org_view(Perm.MANAGE_NURTURE)
def step_create(request, sequence_id: int):
    sequence = _sequence(sequence_id)
    form = StepForm(request.POST)
    if form.is_valid():
        try:
            step = sequence_services.step_save(
                sequence=sequence, actor=request.membership, **form.to_data()
            )
        except LeadflowError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Step {step.position} added.")
            return to(request, "sequence_detail", sequence_id=sequence.pk)
    return _builder(request, sequence, step_form=form, status=400)


@org_view(Perm.MANAGE_NURTURE)
def step_edit(request, step_id: int):
    step = _step(step_id)
    return form_page(
        request,
        StepForm(request.POST or None, step=step),
        save=lambda form: sequence_services.step_save(
            sequence=step.sequence, step=step, actor=request.membership, **form.to_data()
        ),
        saved=lambda obj: (
            f"Step {obj.position} saved.",
            to(request, "sequence_detail", sequence_id=obj.sequence_id),
        ),
        template="nurture/step_form.html",
        context={"tab": "sequences", "step": step, "sequence": step.sequence},
    )


@require_POST
@org_view(Perm.MANAGE_NURTURE)
def step_delete(request, step_id: int):
    step = _step(step_id)
    try:
        sequence_services.step_delete(step=step, actor=request.membership)
    except LeadflowError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Step {step.position} deleted; the later steps moved up.")
    return to(request, "sequence_detail", sequence_id=step.sequence_id)


@require_POST
@org_view(Perm.MANAGE_NURTURE)
def step_move(request, step_id: int):
    step = _step(step_id)
    direction = request.POST.get("direction")
    if direction not in ("up", "down"):
        messages.error(request, "Move a step up or down.")
        return to(request, "sequence_detail", sequence_id=step.sequence_id)
    try:
        sequence_services.step_move(step=step, direction=direction, actor=request.membership)
    except LeadflowError as exc:
        messages.error(request, str(exc))
    return to(request, "sequence_detail", sequence_id=step.sequence_id)


@require_POST
@org_view(Perm.MANAGE_NURTURE)
def sequence_enroll(request, sequence_id: int):
    sequence = _sequence(sequence_id)
    form = EnrollForm(request.POST)
    if not form.is_valid():
        return _builder(request, sequence, enroll_form=form, status=400)
    nurture_list = form.cleaned_data["nurture_list"]
    lead_ids = ListMembership.objects.filter(
        list=nurture_list, removed_at__isnull=True
    ).values_list("lead_id", flat=True)
    try:
        counts = enrollment_services.enrollment_start(
            sequence=sequence, lead_ids=list(lead_ids), source=f"list:{nurture_list.pk}"
        )
    except LeadflowError as exc:
        messages.error(request, str(exc))
    else:
        n = counts["enrolled"]
        skipped = [
            f"{counts['already']} already enrolled" if counts["already"] else "",
            f"{counts['no_consent']} without email consent or suppressed"
            if counts["no_consent"]
            else "",
        ]
        skipped_text = "; ".join(s for s in skipped if s)
        messages.success(
            request,
            f"{n} lead{pluralize(n)} of {nurture_list} enrolled."
            + (f" Skipped: {skipped_text}." if skipped_text else ""),
        )
    return to(request, "sequence_detail", sequence_id=sequence.pk)


def _enrollment_action(request, enrollment_id: int, action, done: str):
    enrollment = get_tenant_object_or_404(
        Enrollment.objects.select_related("lead"), pk=enrollment_id
    )
    try:
        action(enrollment=enrollment, actor=request.membership)
    except LeadflowError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{enrollment.lead}: {done}.")
    return to(request, "sequence_detail", sequence_id=enrollment.sequence_id)


@require_POST
@org_view(Perm.MANAGE_NURTURE)
def enrollment_pause(request, enrollment_id: int):
    return _enrollment_action(
        request, enrollment_id, enrollment_services.enrollment_pause, "paused"
    )


@require_POST
@org_view(Perm.MANAGE_NURTURE)
def enrollment_resume(request, enrollment_id: int):
    return _enrollment_action(
        request, enrollment_id, enrollment_services.enrollment_resume, "resumed"
    )


@require_POST
@org_view(Perm.MANAGE_NURTURE)
def enrollment_stop(request, enrollment_id: int):
    return _enrollment_action(
        request, enrollment_id, enrollment_services.enrollment_stop, "stopped for good"
    )


# Which count each rate is a share of (None: no rate shown).
RATE_BASE = {
    "sent": None,
    "delivered": "sent",
    "opened": "delivered",
    "clicked": "delivered",
    "unsubscribed": "delivered",
    "bounced": "sent",
    "converted": "delivered",
}


def _percent(value: int, base: int) -> int | None:
    return round(100 * value / base) if base else None


@require_GET
@org_view(Perm.MANAGE_NURTURE)
def sequence_report(request, sequence_id: int):
    sequence = _sequence(sequence_id)
    rows = selectors.sequence_report(sequence=sequence)
    for row in rows:
        row["cells"] = [
            {
                "value": row.get(key, 0),
                "rate": _percent(row.get(key, 0), row.get(RATE_BASE[key], 0))
                if RATE_BASE[key]
                else None,
            }
            for key, _ in REPORT_COLUMNS
        ]
    chart = {
        "labels": [f"Step {row['position']}" for row in rows],
        "series": [
            {"label": label, "data": [row.get(key, 0) for row in rows]}
            for key, label in REPORT_COLUMNS
        ],
    }
    context = {
        "tab": "sequences",
        "sequence": sequence,
        "rows": rows,
        "columns": REPORT_COLUMNS,
        "chart": chart,
        "totals": [sum(row.get(key, 0) for row in rows) for key, _ in REPORT_COLUMNS],
    }
    return render(request, "nurture/sequence_report.html", context)
