"""Scoring pages (MANAGE_SCORING): rules with their live simulation, settings and
gating rules, rescore progress, and the audit log. Views parse, call a service
(scoring.services) or a selector, and render."""

from __future__ import annotations

import os

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.errors import LeadflowError
from leadflow.core.formpage import form_page
from leadflow.core.tenancy import get_tenant_object_or_404
from scoring import rescoring, selectors, services, versions
from scoring.fields import RuleError
from scoring.forms import (
    GateForm,
    GroupForm,
    PostQualificationForm,
    SettingsForm,
    StarterSetForm,
    operators_by_field,
    rule_form_class,
)
from scoring.models import (
    GatingRule,
    LearningJob,
    PostQualificationField,
    RescoreJob,
    RuleKind,
    RuleSetVersion,
    ScoreGroup,
    ScoringRule,
)
from scoring.simulation import RuleSimulation, SimulationTooSlow, simulate_rule, simulate_version
from scoring.transfer import rules_csv, rules_yaml

AUDIT_PER_PAGE = 50
RECENT_CHANGES = 8
RESCORING = "Scores are being recalculated."


def _rule(rule_id: int) -> ScoringRule:
    return get_tenant_object_or_404(ScoringRule.objects.select_related("group"), pk=rule_id)


def _gate(gate_id: int) -> GatingRule:
    return get_tenant_object_or_404(GatingRule, pk=gate_id)


def _to_rules(request):
    return redirect("scoring:rule_list", org_slug=request.organization.slug)


def _to_settings(request):
    return redirect("scoring:settings", org_slug=request.organization.slug)


def _settings(request):
    return selectors.scoring_settings(organization_id=request.organization.pk)


def _progress(job: RescoreJob | None) -> dict:
    return {"job": job, "job_active": job is not None and job.status in selectors.ACTIVE_JOB}


# --- Rules page -------------------------------------------------------------------


def _kpis(request, settings, distribution: selectors.Distribution) -> list[dict]:
    """The four figures above the rule lists."""
    total, half_life = distribution.total, settings.half_life_days
    settings_url = reverse("scoring:settings", kwargs={"org_slug": request.organization.slug})
    unscored = distribution.unscored
    grade = f" and fit grade {settings.min_fit_grade} or better" if settings.min_fit_grade else ""
    return [
        {
            "label": "MQL-eligible leads",
            "value": f"{distribution.mql:,}",
            "note": f"of {total:,} lead{pluralize(total)}" if total else "no leads yet",
            "testid": "mql-count",
        },
        {
            "label": "MQL threshold",
            "value": f"{settings.mql_threshold:,}",
            "note": f"points{grade}",
            "link": settings_url,
        },
        {
            "label": "Decay",
            "value": f"{half_life} d" if half_life else "Off",
            "note": f"engagement points halve every {half_life} days"
            if half_life
            else "engagement points keep their full weight",
            "link": settings_url,
        },
        {
            "label": "Not scored yet",
            "value": f"{unscored:,}",
            "note": "leads waiting for a rescore"
            if distribution.unscored
            else "every lead has a score",
        },
    ]


@require_GET
@org_view(Perm.MANAGE_SCORING)
def rule_list(request):
    settings = _settings(request)
    rules = selectors.rules_for_page()
    distribution = selectors.score_distribution(settings=settings)
    context = {
        "settings": settings,
        "fit_rules": rules[RuleKind.FIT],
        "engagement_rules": rules[RuleKind.ENGAGEMENT],
        "groups": selectors.groups_for_page(),
        "distribution": distribution,
        "kpis": _kpis(request, settings, distribution),
        "chart": distribution.chart_data(threshold=settings.mql_threshold),
        "changes": selectors.with_change_lines(selectors.audit_log(limit=RECENT_CHANGES)),
        **_progress(selectors.latest_rescore_job()),
    }
    return render(request, "scoring/rule_list.html", context)


@require_POST
@org_view(Perm.MANAGE_SCORING)
def rule_toggle(request, rule_id: int):
    rule = _rule(rule_id)
    active = request.POST.get("active")
    if active not in ("0", "1"):
        return HttpResponseBadRequest(
            "Post active=1 to switch the rule on, active=0 to switch it off."
        )
    services.rule_set_active(rule=rule, active=active == "1", actor=request.membership)
    if request.htmx:
        # The row swaps in place; the progress card follows out of band (a rescore is queued).
        context = {
            "rule": selectors.rule_for_row(rule=rule),
            **_progress(selectors.latest_rescore_job()),
        }
        return render(request, "scoring/partials/rule_toggled.html", context)
    state = "on" if rule.is_active else "off"
    messages.success(request, f"“{rule.name}” is switched {state}. {RESCORING}")
    return _to_rules(request)


@org_view(Perm.MANAGE_SCORING)
def rule_delete(request, rule_id: int):
    rule = _rule(rule_id)
    if request.method == "POST":
        services.rule_delete(rule=rule, actor=request.membership)
        messages.success(request, f"“{rule.name}” deleted. {RESCORING}")
        return _to_rules(request)
    return render(
        request, "scoring/rule_confirm_delete.html", {"rule": selectors.rule_for_row(rule=rule)}
    )


# --- Add / edit a rule, with its simulation ------------------------------------------------


def _new_rule(request, kind: str | None) -> ScoringRule:
    return ScoringRule(
        organization=request.organization, kind=kind if kind in RuleKind.values else RuleKind.FIT
    )


def _simulate(request, candidate: ScoringRule | None) -> tuple[RuleSimulation | None, str]:
    if candidate is None:
        return None, ""
    try:
        return simulate_rule(organization_id=request.organization.pk, candidate=candidate), ""
    except (RuleError, SimulationTooSlow) as exc:  # the form validated; last guards
        return None, str(exc)


def _rule_page(request, rule: ScoringRule):
    """Create or edit. A POST with action=preview shows the simulation without
    saving: the no-JavaScript path of the live simulation."""
    form = rule_form_class(rule.kind)(request.POST or None, instance=rule)
    if request.method == "POST" and form.is_valid() and request.POST.get("action") != "preview":
        candidate = form.build_rule()
        if candidate.pk is None:
            candidate.position = selectors.next_rule_position(kind=candidate.kind)
        try:
            saved = services.rule_save(rule=candidate, actor=request.membership)
        except LeadflowError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"“{saved.name}” saved. {RESCORING}")
            return _to_rules(request)
    if request.method == "POST":
        candidate = form.build_rule() if form.is_valid() else None
    else:
        candidate = rule if rule.pk else None  # an edit opens with the rule's current impact
    simulation, sim_error = _simulate(request, candidate)
    context = {
        "form": form,
        "rule": rule,
        "kind_label": RuleKind(rule.kind).label,
        "simulation": simulation,
        "sim_error": sim_error,
        "operators_by_field": operators_by_field(),
    }
    return render(request, "scoring/rule_form.html", context, status=400 if form.errors else 200)


@org_view(Perm.MANAGE_SCORING)
def rule_create(request):
    kind = request.POST.get("kind") or request.GET.get("kind")
    return _rule_page(request, _new_rule(request, kind))


@org_view(Perm.MANAGE_SCORING)
def rule_edit(request, rule_id: int):
    return _rule_page(request, _rule(rule_id))


@require_POST
@org_view(Perm.MANAGE_SCORING)
def rule_simulate(request, rule_id: int | None = None):
    """The live simulation partial: the rule form as it stands, scored, not saved."""
    rule = _rule(rule_id) if rule_id else _new_rule(request, request.POST.get("kind"))
    form = rule_form_class(rule.kind)(request.POST, instance=rule)
    simulation, sim_error = _simulate(request, form.build_rule() if form.is_valid() else None)
    context = {"form": form, "rule": rule, "simulation": simulation, "sim_error": sim_error}
    # 200 even while the form is incomplete: htmx swaps successful responses only.
    return render(request, "scoring/rule_form.html#simulation", context)


# --- Settings and gating rules -----------------------------------------------------------


@org_view(Perm.MANAGE_SCORING)
def settings_edit(request):
    settings = _settings(request)
    form = SettingsForm(request.POST or None, instance=settings)
    if request.method == "POST" and form.is_valid():
        services.settings_save(settings=form.build_settings(), actor=request.membership)
        messages.success(request, f"Scoring settings saved. {RESCORING}")
        return _to_settings(request)
    context = {
        "form": form,
        "gates": selectors.gates_for_page(),
        "groups": ScoreGroup.objects.annotate(rule_count=Count("rules")).order_by("name"),
        "group_form": GroupForm(),
        "post_qualification": PostQualificationField.objects.order_by("field"),
        "post_qualification_form": PostQualificationForm(),
    }
    return render(request, "scoring/settings.html", context, status=400 if form.errors else 200)


@require_POST
@org_view(Perm.MANAGE_SCORING)
def post_qualification_add(request):
    form = PostQualificationForm(request.POST)
    if form.is_valid() and form.cleaned_data.get("field_name"):
        field = form.cleaned_data["field_name"]
        services.post_qualification_mark(
            organization_id=request.organization.pk, fields=[field], actor=request.membership
        )
        messages.success(
            request,
            f"“{selectors.field_label(field)}” is now a post-qualification field: "
            "scoring rules and learning leave it out.",
        )
    else:
        errors = "; ".join(e for errs in form.errors.values() for e in errs)
        messages.error(request, errors or "Choose a field.")
    return _to_settings(request)


@require_POST
@org_view(Perm.MANAGE_SCORING)
def post_qualification_remove(request, post_qual_id: int):
    marked = get_tenant_object_or_404(PostQualificationField, pk=post_qual_id)
    services.post_qualification_unmark(
        organization_id=request.organization.pk, field=marked.field, actor=request.membership
    )
    messages.success(request, f"“{selectors.field_label(marked.field)}” may score leads again.")
    return _to_settings(request)


def _gate_page(request, gate: GatingRule):
    form = GateForm(request.POST or None, instance=gate)
    if request.method == "POST" and form.is_valid():
        saved = services.gate_save(gate=form.build_gate(), actor=request.membership)
        messages.success(request, f"Gating rule “{saved.reason}” saved. {RESCORING}")
        return _to_settings(request)
    context = {"form": form, "gate": gate, "operators_by_field": operators_by_field()}
    return render(request, "scoring/gate_form.html", context, status=400 if form.errors else 200)


@org_view(Perm.MANAGE_SCORING)
def gate_create(request):
    return _gate_page(request, GatingRule(organization=request.organization))


@org_view(Perm.MANAGE_SCORING)
def gate_edit(request, gate_id: int):
    return _gate_page(request, _gate(gate_id))


@org_view(Perm.MANAGE_SCORING)
def gate_delete(request, gate_id: int):
    gate = _gate(gate_id)
    if request.method == "POST":
        services.gate_delete(gate=gate, actor=request.membership)
        messages.success(request, f"Gating rule “{gate.reason}” deleted. {RESCORING}")
        return _to_settings(request)
    gate.condition = selectors.describe_gate(gate)
    return render(request, "scoring/gate_confirm_delete.html", {"gate": gate})


# --- Score groups -----------------------------------------------------------------------


def _group_page(request, group: ScoreGroup):
    def save(form):
        group = form.save(commit=False)
        group.organization = request.organization
        services.group_save(group=group, actor=request.membership)
        return group

    return form_page(
        request,
        GroupForm(request.POST or None, instance=group),
        save=save,
        saved=lambda group: (f"Group “{group.name}” saved. {RESCORING}", _to_settings(request)),
        template="scoring/group_form.html",
        context={"group": group},
    )


@org_view(Perm.MANAGE_SCORING)
def group_create(request):
    return _group_page(request, ScoreGroup(organization=request.organization))


@org_view(Perm.MANAGE_SCORING)
def group_edit(request, group_id: int):
    return _group_page(request, get_tenant_object_or_404(ScoreGroup, pk=group_id))


@require_POST
@org_view(Perm.MANAGE_SCORING)
def group_delete(request, group_id: int):
    group = get_tenant_object_or_404(ScoreGroup, pk=group_id)
    services.group_delete(group=group, actor=request.membership)
    messages.success(request, f"Group “{group.name}” deleted; its rules are now ungrouped.")
    return _to_settings(request)


# --- Rescoring and the audit log ------------------------------------------------------


@require_POST
@org_view(Perm.MANAGE_SCORING)
def rescore_start(request):
    job = rescoring.rescore_job_start(
        organization_id=request.organization.pk, reason=f"Rescore requested by {request.user}"
    )
    if request.htmx:
        return render(request, "scoring/partials/rescore_progress.html", _progress(job))
    messages.success(request, RESCORING)
    return _to_rules(request)


@require_GET
@org_view(Perm.MANAGE_SCORING)
def rescore_progress(request, rescore_job_id: int):
    job = get_tenant_object_or_404(RescoreJob, pk=rescore_job_id)
    if not request.htmx:
        return _to_rules(request)
    context = {**_progress(job), "polled": True}
    return render(request, "scoring/partials/rescore_progress.html", context)


@require_GET
@org_view(Perm.MANAGE_SCORING)
def audit_log(request):
    page = Paginator(selectors.audit_log(), AUDIT_PER_PAGE).get_page(request.GET.get("page"))
    changes = selectors.with_change_lines(page.object_list)
    return render(request, "scoring/audit_log.html", {"page": page, "changes": changes})


# --- Learning from outcomes and rule-set versions ----------------------------------------


def _learning_progress(job) -> dict:
    return {"learning_job": job, "learning_active": job is not None and job.status in ACTIVE}


ACTIVE = ("queued", "running")


@require_GET
@org_view(Perm.MANAGE_SCORING)
def learning_overview(request):
    context = {
        "counts": selectors.outcome_counts(),
        "versions": selectors.versions_for_page(),
        "applied": selectors.applied_version(),
        "drift": selectors.drift_check(),
        "drift_notice": selectors.open_drift_notice(),
        "starter_form": StarterSetForm(),
        **_learning_progress(selectors.latest_learning_job()),
    }
    return render(request, "scoring/learning.html", context)


@require_POST
@org_view(Perm.MANAGE_SCORING)
def learning_start(request):
    job = versions.learning_job_start(
        organization_id=request.organization.pk, actor=request.membership
    )
    if request.htmx:
        return render(request, "scoring/partials/learning_progress.html", _learning_progress(job))
    messages.success(request, "Learning from your outcomes; the suggestion appears below.")
    return redirect("scoring:learning", org_slug=request.organization.slug)


@require_GET
@org_view(Perm.MANAGE_SCORING)
def learning_progress(request, learning_job_id: int):
    job = get_tenant_object_or_404(LearningJob, pk=learning_job_id)
    if not request.htmx:
        return redirect("scoring:learning", org_slug=request.organization.slug)
    context = {**_learning_progress(job), "polled": True}
    return render(request, "scoring/partials/learning_progress.html", context)


@require_GET
@org_view(Perm.MANAGE_SCORING)
def version_detail(request, version_id: int):
    version = get_tenant_object_or_404(RuleSetVersion, pk=version_id)
    context = {
        "version": version,
        "applied": selectors.applied_version(),
        "compare": selectors.version_compare(version),
    }
    return render(request, "scoring/version_detail.html", context)


@require_GET
@org_view(Perm.MANAGE_SCORING)
def version_simulate(request, version_id: int):
    version = get_tenant_object_or_404(RuleSetVersion, pk=version_id)
    context = {"version": version, "simulation": None, "error": ""}
    try:
        context["simulation"] = simulate_version(version=version)
    except SimulationTooSlow as exc:
        context["error"] = str(exc)
    return render(request, "scoring/version_simulation.html", context)


@require_POST
@org_view(Perm.MANAGE_SCORING)
def version_apply(request, version_id: int):
    version = get_tenant_object_or_404(RuleSetVersion, pk=version_id)
    try:
        versions.version_apply(version=version, actor=request.membership)
    except LeadflowError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Version {version.number} is now in use. {RESCORING} "
            "You can go back to the previous rules with one click.",
        )
    return redirect("scoring:learning", org_slug=request.organization.slug)


@require_POST
@org_view(Perm.MANAGE_SCORING)
def version_rollback(request):
    try:
        version = versions.version_rollback(actor=request.membership)
    except LeadflowError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Back to version {version.number}. {RESCORING}")
    return redirect("scoring:learning", org_slug=request.organization.slug)


@require_POST
@org_view(Perm.MANAGE_SCORING)
def starter_draft(request):
    form = StarterSetForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the starter sets.")
        return redirect("scoring:learning", org_slug=request.organization.slug)
    version = versions.version_from_starter(
        organization_id=request.organization.pk,
        business_type=form.cleaned_data["business_type"],
        actor=request.membership,
    )
    messages.success(request, "Starter rules ready as a draft: compare them before applying.")
    return redirect(
        "scoring:version_detail", org_slug=request.organization.slug, version_id=version.pk
    )


@require_POST
@org_view(Perm.MANAGE_SCORING)
def version_discard(request, version_id: int):
    version = get_tenant_object_or_404(RuleSetVersion, pk=version_id)
    try:
        versions.version_discard(version=version)
    except LeadflowError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Suggestion {version.number} discarded.")
    return redirect("scoring:learning", org_slug=request.organization.slug)


EXPORTS = {
    "csv": (rules_csv, "text/csv", "utf-8-sig"),
    "yaml": (rules_yaml, "application/yaml", "utf-8"),
}


@require_GET
@org_view(Perm.MANAGE_SCORING)
def rules_export(request, fmt: str = "csv"):
    render_rules, content_type, encoding = EXPORTS[fmt]
    response = HttpResponse(
        render_rules(selectors.live_rules()).encode(encoding), content_type=content_type
    )
    stamp = timezone.localdate().isoformat()
    name = f"scoring-rules-{request.organization.slug}-{stamp}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


RULES_FILE_LIMIT = 2 * 1024 * 1024


@require_POST
@org_view(Perm.MANAGE_SCORING)
def rules_import(request):
    upload = request.FILES.get("file")
    back = redirect("scoring:learning", org_slug=request.organization.slug)
    if upload is None or upload.size > RULES_FILE_LIMIT:
        messages.error(request, "Choose a rules file (CSV or YAML) of at most 2 MB.")
        return back
    try:
        text = upload.read().decode("utf-8")
        version = versions.version_import(
            organization_id=request.organization.pk,
            text=text,
            file_name=os.path.basename(upload.name or "rules.csv"),
            actor=request.membership,
        )
    except UnicodeDecodeError:
        messages.error(request, "The file is not UTF-8 text.")
        return back
    except LeadflowError as exc:
        messages.error(request, str(exc))
        return back
    messages.success(request, "Rules imported as a draft: compare them before applying.")
    return redirect(
        "scoring:version_detail", org_slug=request.organization.slug, version_id=version.pk
    )
