"""Routing settings (MANAGE_ROUTING): teams and their reps (capacity, weight,
away), routing rules in priority order with their conditions, and the SLA /
BANT / PQL policy."""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby

from django.contrib import messages
from django.forms import Form
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.errors import LeadflowError
from leadflow.core.formpage import form_page
from leadflow.core.tenancy import get_tenant_object_or_404
from pipeline import selectors, services
from pipeline.forms import (
    PolicyForm,
    RoutingRuleForm,
    TeamForm,
    TeamMemberForm,
    condition_formset,
)
from pipeline.models import ROUTING_FIELDS, RoutingRule, Team, TeamMember
from pipeline.views.common import policy_of
from scoring.models import Operator


def _to_settings(request, anchor: str = ""):
    response = redirect("pipeline:settings", org_slug=request.organization.slug)
    if anchor:
        response["Location"] += f"#{anchor}"
    return response


def describe_condition(condition: dict) -> str:
    """“Country is one of DE, FR” — a rule's condition in words."""
    value = condition.get("value")
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    field = ROUTING_FIELDS.get(condition.get("field"), condition.get("field"))
    operator = dict(Operator.choices).get(condition.get("operator"), condition.get("operator"))
    return f"{field} {operator}" + ("" if value is None else f" {value}")


@org_view(Perm.MANAGE_ROUTING)
def settings(request):
    """The settings page; its form saves the policy (teams and rules have their own pages)."""
    policy = policy_of(request.organization)
    form = PolicyForm(request.POST or None, policy=policy)
    if request.method == "POST" and form.is_valid():
        for name, value in form.policy_data(previous_pql=policy.pql_rules).items():
            setattr(policy, name, value)
        try:
            services.policy_save(policy=policy, actor=request.membership)
        except LeadflowError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Pipeline policy saved: new assignments use it.")
            return _to_settings(request, "policy")
    seats = list(selectors.team_load(organization=request.organization))
    by_team = {team.pk: list(rows) for team, rows in groupby(seats, key=lambda s: s.team)}
    rules = list(
        RoutingRule.objects.select_related("target_team", "target_rep__user").order_by(
            "priority", "pk"
        )
    )
    for rule in rules:
        rule.condition_texts = [describe_condition(c) for c in rule.conditions or []]
    context = {
        "teams": [(team, by_team.get(team.pk, [])) for team in Team.objects.order_by("name")],
        "rules": rules,
        "form": form,
        "timezone": request.organization.timezone,
    }
    return render(request, "pipeline/settings.html", context, status=400 if form.errors else 200)


def _form_page(request, *, form: Form, save: Callable, title: str, success: str, **extra):
    """Create/edit page of a settings object; saved, it goes back to its section."""
    anchor = extra.get("anchor", "")
    return form_page(
        request,
        form,
        save=save,
        saved=lambda obj: (success.format(obj=obj), _to_settings(request, anchor)),
        template=extra.get("template", "pipeline/settings_form.html"),
        context={"title": title, **extra},
    )


def _save_team(request):
    return lambda form: services.team_save(team=form.save(commit=False), actor=request.membership)


@org_view(Perm.MANAGE_ROUTING)
def team_create(request):
    team = Team(organization=request.organization)
    form = TeamForm(request.POST or None, instance=team, organization=request.organization)
    return _form_page(
        request,
        form=form,
        save=_save_team(request),
        title="New team",
        success="Team “{obj}” created — add its reps next.",
        anchor="teams",
    )


@org_view(Perm.MANAGE_ROUTING)
def team_edit(request, team_id: int):
    team = get_tenant_object_or_404(Team, pk=team_id)
    form = TeamForm(request.POST or None, instance=team, organization=request.organization)
    return _form_page(
        request,
        form=form,
        save=_save_team(request),
        title=f"Team {team.name}",
        success="Team “{obj}” saved.",
        anchor="teams",
        delete_url_name="pipeline:team_delete",
        obj=team,
    )


@require_POST
@org_view(Perm.MANAGE_ROUTING)
def team_delete(request, team_id: int):
    team = get_tenant_object_or_404(Team, pk=team_id)
    services.team_delete(team=team)
    messages.success(request, f"Team “{team.name}” deleted; its leads keep their reps.")
    return _to_settings(request, "teams")


def _save_member(form):
    return services.team_member_save(member=form.save(commit=False))


@org_view(Perm.MANAGE_ROUTING)
def team_member_create(request, team_id: int):
    team = get_tenant_object_or_404(Team, pk=team_id)
    member = TeamMember(organization=request.organization, team=team)
    form = TeamMemberForm(request.POST or None, instance=member, organization=request.organization)
    return _form_page(
        request,
        form=form,
        save=_save_member,
        title=f"Add a rep to {team.name}",
        success="Rep added to the team.",
        anchor="teams",
    )


@org_view(Perm.MANAGE_ROUTING)
def team_member_edit(request, team_member_id: int):
    member = get_tenant_object_or_404(
        TeamMember.objects.select_related("team", "membership__user"), pk=team_member_id
    )
    form = TeamMemberForm(request.POST or None, instance=member, organization=request.organization)
    title = f"{member.membership.user.display_name} in {member.team.name}"
    return _form_page(
        request,
        form=form,
        save=_save_member,
        title=title,
        success="Seat saved.",
        anchor="teams",
        delete_url_name="pipeline:team_member_remove",
        obj=member,
    )


@require_POST
@org_view(Perm.MANAGE_ROUTING)
def team_member_remove(request, team_member_id: int):
    member = get_tenant_object_or_404(TeamMember, pk=team_member_id)
    services.team_member_remove(member=member)
    messages.success(request, "Rep removed from the team; their open leads stay with them.")
    return _to_settings(request, "teams")


def _rule_page(request, rule: RoutingRule, title: str):
    data = request.POST if request.method == "POST" else None
    conditions = condition_formset(data, rule=rule)
    form = RoutingRuleForm(
        data, instance=rule, organization=request.organization, conditions=conditions
    )

    def save(form):
        candidate = form.save(commit=False)
        candidate.conditions = form.cleaned_conditions()
        return services.routing_rule_save(rule=candidate, actor=request.membership)

    return _form_page(
        request,
        form=form,
        save=save,
        title=title,
        success="Routing rule “{obj}” saved.",
        anchor="rules",
        template="pipeline/rule_form.html",
        conditions=conditions,
        delete_url_name="pipeline:rule_delete" if rule.pk else "",
        obj=rule,
    )


@org_view(Perm.MANAGE_ROUTING)
def rule_create(request):
    rule = RoutingRule(organization=request.organization, priority=_next_priority())
    return _rule_page(request, rule, "New routing rule")


def _next_priority() -> int:
    last = RoutingRule.objects.order_by("-priority").values_list("priority", flat=True).first()
    return (last or 0) + 10


@org_view(Perm.MANAGE_ROUTING)
def rule_edit(request, routing_rule_id: int):
    rule = get_tenant_object_or_404(RoutingRule, pk=routing_rule_id)
    return _rule_page(request, rule, f"Routing rule {rule.name}")


@require_POST
@org_view(Perm.MANAGE_ROUTING)
def rule_delete(request, routing_rule_id: int):
    rule = get_tenant_object_or_404(RoutingRule, pk=routing_rule_id)
    services.routing_rule_delete(rule=rule)
    messages.success(request, f"Routing rule “{rule.name}” deleted.")
    return _to_settings(request, "rules")
