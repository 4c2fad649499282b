"""Rule, gate and settings forms: what they accept, what they store, and the
clear message for each kind of bad input."""

from __future__ import annotations

import pytest

from leadflow.core.tenancy import tenant_scope
from scoring.forms import (
    POINTS_MESSAGE,
    WINDOW_MESSAGE,
    EngagementRuleForm,
    FitRuleForm,
    GateForm,
    SettingsForm,
)
from scoring.models import GatingRule, RuleKind, ScoringRule, ScoringSettings
from tests.factories import ScoreGroupFactory, ScoringRuleFactory

pytestmark = pytest.mark.django_db

FIT = {"field": "title", "operator": "contains", "value": "VP", "points": "10"}
ENGAGEMENT = {
    "activity_kinds": ["page_view"],
    "property_key": "url",
    "property_operator": "contains",
    "property_value": "/pricing",
    "min_count": "2",
    "window_days": "30",
    "mode": "per_occurrence",
    "max_points": "10",
    "points": "2",
}


def fit_form(org, data: dict, instance: ScoringRule | None = None) -> FitRuleForm:
    rule = instance or ScoringRule(organization=org, kind=RuleKind.FIT)
    return FitRuleForm(data, instance=rule)


def engagement_form(org, data: dict, instance=None) -> EngagementRuleForm:
    rule = instance or ScoringRule(organization=org, kind=RuleKind.ENGAGEMENT)
    return EngagementRuleForm(data, instance=rule)


def test_a_fit_rule_is_stored_normalized_and_named_after_its_condition(org, other_org):
    with tenant_scope(org):
        group = ScoreGroupFactory(organization=org, name="Title", cap=20)
        form = fit_form(org, {**FIT, "group": str(group.pk)})
        assert form.is_valid(), form.errors
        rule = form.build_rule()
    assert (rule.kind, rule.field, rule.operator, rule.value) == ("fit", "title", "contains", "VP")
    assert (rule.points, rule.group, rule.pk) == (10, group, None)
    assert rule.name == "Job title contains ‘VP’"
    assert rule.activity_kinds == [] and rule.window_days is None


@pytest.mark.parametrize(
    ("data", "value"),
    [
        ({"field": "company_size", "operator": "gte", "value": " 200 "}, 200.0),
        ({"field": "company_size", "operator": "between", "value": "500, 50"}, [50.0, 500.0]),
        ({"field": "country", "operator": "not_in", "value": "US, CA,, GB"}, ["US", "CA", "GB"]),
        ({"field": "email_opt_in", "operator": "eq", "value": "yes"}, True),
        ({"field": "industry", "operator": "empty", "value": "ignored"}, None),
        (
            {"field": "custom", "custom_key": "total_visits", "operator": "gt", "value": "3"},
            3.0,
        ),
    ],
)
def test_values_are_normalized_for_their_operator(org, other_org, data, value):
    with tenant_scope(org):
        form = fit_form(org, {**data, "points": "5"})
        assert form.is_valid(), form.errors
        rule = form.build_rule()
    assert rule.value == value
    if data["field"] == "custom":
        assert rule.field == "custom.total_visits"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"field": "salary"}, "field", "Select a valid choice"),
        (
            {"field": "custom", "custom_key": "Total Visits!"},
            "custom_key",
            "Custom attribute names use lower-case letters, digits and _",
        ),
        ({"field": "custom", "custom_key": ""}, "custom_key", "Name the custom attribute"),
        ({"operator": "gt", "value": "5"}, "operator", "Job title is text"),
        ({"field": "company_size", "operator": "contains"}, "operator", "is a number"),
        ({"field": "email_opt_in", "operator": "contains"}, "operator", "is yes/no"),
        (
            {"field": "company_size", "operator": "gte", "value": "lots"},
            "value",
            "'lots' is not a number.",
        ),
        (
            {"field": "company_size", "operator": "between", "value": "10"},
            "value",
            "Between needs two numbers: low, high.",
        ),
        ({"operator": "in", "value": " , ,"}, "value", "Give at least one value"),
        ({"value": "   "}, "value", "A value is required for this operator."),
        ({"points": "1001"}, "points", POINTS_MESSAGE),
        ({"points": "-1001"}, "points", POINTS_MESSAGE),
        ({"points": "10" * 30}, "points", POINTS_MESSAGE),
        ({"points": "ten"}, "points", "Enter a whole number."),
        ({"operator": "regex"}, "operator", "Select a valid choice"),
    ],
)
def test_bad_fit_rules_get_a_message_on_the_right_field(org, other_org, data, field, message):
    with tenant_scope(org):
        form = fit_form(org, {**FIT, **data})
        assert not form.is_valid()
    assert any(message in error for error in form.errors[field]), form.errors


def test_a_group_of_another_organization_is_not_a_choice(org, other_org):
    with tenant_scope(other_org):
        foreign = ScoreGroupFactory(organization=other_org)
    with tenant_scope(org):
        form = fit_form(org, {**FIT, "group": str(foreign.pk)})
        assert not form.is_valid()
    assert "Select a valid choice" in form.errors["group"][0]


def test_an_engagement_rule_with_a_property_filter(org, other_org):
    with tenant_scope(org):
        form = engagement_form(org, ENGAGEMENT)
        assert form.is_valid(), form.errors
        rule = form.build_rule()
    assert (rule.kind, rule.activity_kinds) == ("engagement", ["page_view"])
    assert (rule.field, rule.operator, rule.value) == ("url", "contains", "/pricing")
    assert (rule.min_count, rule.window_days, rule.max_points) == (2, 30, 10)
    assert (rule.per_occurrence, rule.first_only, rule.half_life_days) == (True, False, None)
    assert (
        rule.name
        == "Page view where page URL contains ‘/pricing’, at least 2 times in the last 30 days"
    )


def test_an_engagement_rule_without_filter_or_window(org, other_org):
    data = {**ENGAGEMENT, "property_key": "", "property_operator": "", "property_value": ""}
    data.update(window_days="", max_points="", mode="first_only", activity_kinds=["email_open"])
    with tenant_scope(org):
        form = engagement_form(org, data)
        assert form.is_valid(), form.errors
        rule = form.build_rule()
    assert (rule.field, rule.operator, rule.value, rule.window_days) == ("", "", None, None)
    assert (rule.first_only, rule.per_occurrence, rule.max_points) == (True, False, None)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"activity_kinds": []}, "activity_kinds", "Choose at least one activity."),
        ({"activity_kinds": ["teleport"]}, "activity_kinds", "Select a valid choice"),
        ({"window_days": "-5"}, "window_days", WINDOW_MESSAGE),
        ({"window_days": "0"}, "window_days", WINDOW_MESSAGE),
        ({"window_days": "100000"}, "window_days", WINDOW_MESSAGE),
        ({"window_days": "9" * 40}, "window_days", WINDOW_MESSAGE),
        ({"min_count": "0"}, "min_count", "between 1 and 10,000"),
        ({"max_points": "0"}, "max_points", "The cap is 1 to"),
        ({"half_life_days": "4000"}, "half_life_days", "The half-life is 1 to 3650 days"),
        ({"points": "5000"}, "points", POINTS_MESSAGE),
        ({"property_key": "Page URL"}, "property_key", "Property names use lower-case"),
        ({"property_key": ""}, "property_key", "Name the property to compare"),
        ({"property_operator": ""}, "property_operator", "Choose how to compare"),
        ({"property_operator": "gt"}, "property_operator", "Select a valid choice"),
        (
            {"property_key": "", "property_operator": ""},
            "property_key",
            "Name the property this value is for",
        ),
        ({"property_value": ""}, "property_value", "A value is required"),
        ({"mode": "sometimes"}, "mode", "Select a valid choice"),
    ],
)
def test_bad_engagement_rules_get_a_message(org, other_org, data, field, message):
    with tenant_scope(org):
        form = engagement_form(org, {**ENGAGEMENT, **data})
        assert not form.is_valid()
    assert any(message in error for error in form.errors[field]), form.errors


@pytest.mark.parametrize(
    ("saved", "form_class"),
    [
        ({"field": "title", "operator": "in", "value": ["CEO", "CTO"]}, FitRuleForm),
        ({"field": "company_size", "operator": "between", "value": [50.0, 200.0]}, FitRuleForm),
        ({"field": "custom.plan", "operator": "eq", "value": "pro"}, FitRuleForm),
        (
            {
                "kind": RuleKind.ENGAGEMENT,
                "activity_kinds": ["email_click"],
                "field": "campaign",
                "operator": "eq",
                "value": "Spring launch",
                "per_occurrence": True,
                "max_points": 10,
                "window_days": 90,
                "half_life_days": 7,
            },
            EngagementRuleForm,
        ),
    ],
)
def test_an_edit_form_shows_the_saved_rule_and_saves_it_back_unchanged(
    org, other_org, saved, form_class
):
    with tenant_scope(org):
        group = ScoreGroupFactory(organization=org)
        rule = ScoringRuleFactory(organization=org, group=group, name="Saved", **saved)
        unbound = form_class(instance=rule)
        data = {}
        for name in unbound.fields:
            value = unbound[name].value()
            if value is not None:
                data[name] = value
        form = form_class(data, instance=rule)
        assert form.is_valid(), (data, form.errors)
        again = form.build_rule()
    fields = ["name", "kind", "field", "operator", "value", "points", "group_id", "activity_kinds"]
    fields += ["min_count", "window_days", "per_occurrence", "first_only", "max_points"]
    fields += ["half_life_days"]
    assert {f: getattr(again, f) for f in fields} == {f: getattr(rule, f) for f in fields}


def test_building_a_rule_leaves_the_loaded_instance_alone(org, other_org):
    with tenant_scope(org):
        rule = ScoringRuleFactory(organization=org, points=10)
        form = fit_form(org, {**FIT, "points": "30"}, instance=rule)
        assert form.is_valid()
        assert form.build_rule().points == 30
    assert rule.points == 10


def test_gate_form(org, other_org):
    data = {"reason": " Student ", "field": "title", "operator": "contains", "value": "student"}
    with tenant_scope(org):
        form = GateForm({**data, "is_active": "on"}, instance=GatingRule(organization=org))
        assert form.is_valid(), form.errors
        gate = form.build_gate()
        bad = GateForm(
            {**data, "field": "company_size", "operator": "gt", "value": "many"},
            instance=GatingRule(organization=org),
        )
        assert not bad.is_valid()
    assert (gate.reason, gate.field, gate.operator, gate.value, gate.is_active) == (
        "Student",
        "title",
        "contains",
        "student",
        True,
    )
    assert bad.errors["value"] == ["'many' is not a number."]


SETTINGS = {
    "mql_threshold": "80",
    "min_fit_grade": "B",
    "grade_a": "50",
    "grade_b": "30",
    "grade_c": "10",
    "grade_d": "-5",
    "hot": "120",
    "warm": "50",
    "half_life_days": "",
    "total_ceiling": "200",
}


def test_settings_form_builds_the_bands(org, other_org):
    with tenant_scope(org):
        settings = ScoringSettings.objects.create(organization=org)
        form = SettingsForm(SETTINGS, instance=settings)
        assert form.is_valid(), form.errors
        built = form.build_settings()
    assert built.grade_bands == {"A": 50, "B": 30, "C": 10, "D": -5}
    assert built.temperature_bands == {"hot": 120, "warm": 50}
    assert (built.mql_threshold, built.min_fit_grade) == (80, "B")
    assert (built.half_life_days, built.total_ceiling) == (None, 200)  # decay off


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"grade_b": "60"}, "__all__", "Grade bands must go down from A to D"),
        ({"grade_c": "30"}, "__all__", "Grade bands must go down from A to D"),
        ({"hot": "50"}, "hot", "Hot must start above warm."),
        ({"total_ceiling": "79"}, "total_ceiling", "no lead could ever qualify"),
        ({"mql_threshold": "0"}, "mql_threshold", "The threshold is 1 to 100,000 points."),
        ({"half_life_days": "-1"}, "half_life_days", "switch decay off"),
        ({"min_fit_grade": "F"}, "min_fit_grade", "Select a valid choice"),
    ],
)
def test_bad_settings_get_a_message(org, other_org, data, field, message):
    with tenant_scope(org):
        settings = ScoringSettings.objects.create(organization=org)
        form = SettingsForm({**SETTINGS, **data}, instance=settings)
        assert not form.is_valid()
    assert any(message in error for error in form.errors[field]), form.errors
