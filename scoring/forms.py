"""Forms of the scoring pages: fit and engagement rules, gating rules, settings.

Each form validates everything the engine would trip on (unknown field, a text
operator on a number, a non-numeric value, out-of-range points or windows) and
says so next to the field; `build_*()` returns an unsaved model instance that
the view hands to a service (scoring.services), or to the simulation.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML, Column, Div, Field, Fieldset, Layout, Row
from django import forms
from django.core.exceptions import ValidationError

from accounts.models import BusinessType
from leads.models import ActivityKind
from scoring import engine
from scoring import fields as F_
from scoring.models import (
    MAX_WINDOW_DAYS,
    POINTS_LIMIT,
    GatingRule,
    Operator,
    RuleKind,
    ScoreGroup,
    ScoringRule,
    ScoringSettings,
)
from scoring.selectors import (
    PROPERTY_KEYS,
    describe_rule,
    post_qualification_fields,
    value_text,
)

CUSTOM_FIELD = "custom"  # the field chooser's "Custom attribute…" entry
POINTS_MESSAGE = f"Points must be between −{POINTS_LIMIT} and {POINTS_LIMIT}."
WINDOW_MESSAGE = (
    f"The window is 1 to {MAX_WINDOW_DAYS} days (10 years); leave it empty to count "
    "activities of any age."
)
HALF_LIFE_MESSAGE = f"The half-life is 1 to {MAX_WINDOW_DAYS} days; leave it empty for the default."
BIG = POINTS_LIMIT * 100  # thresholds, bands and caps (the models' bounds)

# Which operators make sense for each kind of field (the engine would otherwise
# compare a number as text, or a yes/no field with "contains").
TEXT_OPERATORS = [op for op in Operator.values if op not in F_.NUMERIC_OPS]
OPERATORS_BY_KIND: dict[str, list[str]] = {
    F_.TEXT: TEXT_OPERATORS,
    F_.NUMBER: [
        Operator.EQUALS,
        Operator.NOT_EQUALS,
        Operator.GT,
        Operator.GTE,
        Operator.LT,
        Operator.LTE,
        Operator.BETWEEN,
        Operator.EMPTY,
        Operator.NOT_EMPTY,
    ],
    F_.BOOL: [Operator.EQUALS, Operator.NOT_EQUALS, Operator.EMPTY, Operator.NOT_EMPTY],
    "custom": list(Operator.values),
}
KIND_HINTS = {
    F_.TEXT: "is text: use equals, contains, starts with, is one of or is empty",
    F_.NUMBER: "is a number: use equals, greater/less than, at least/at most or between",
    F_.BOOL: "is yes/no: use equals (yes or no) or is empty",
}


def field_choices() -> list:
    lead, company = [], []
    for key, spec in F_.FIELDS.items():
        (company if key.startswith("company.") else lead).append((key, spec.label))
    return [
        ("", "Choose a field…"),
        ("Lead", lead),
        ("Company", company),
        ("Other", [(CUSTOM_FIELD, "Custom attribute…")]),
    ]


def operators_by_field() -> dict[str, list[str]]:
    """For the form's script: the operators each field choice accepts."""
    out = {key: OPERATORS_BY_KIND[spec.kind] for key, spec in F_.FIELDS.items()}
    out[CUSTOM_FIELD] = OPERATORS_BY_KIND["custom"]
    return out


def _bounded_int(label: str, low: int, high: int, message: str, **kwargs) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        min_value=low,
        max_value=high,
        error_messages={
            "min_value": message,
            "max_value": message,
            "invalid": "Enter a whole number.",
        },
        **kwargs,
    )


def _row(*columns: tuple[str, str]) -> Row:
    """A layout row: (field name, Bootstrap column classes) pairs."""
    return Row(*(Column(name, css_class=classes) for name, classes in columns))


def _condition_layout() -> list:
    return [
        _row(("field", "col-md-4"), ("operator", "col-md-3"), ("value", "col-md-5")),
        Div("custom_key", css_class="js-custom-key"),
    ]


POINTS_ROW = (("points", "col-md-3"), ("group", "col-md-4"))


class _ConditionFields(forms.Form):
    """Field / custom attribute / operator / value, shared by fit and gating rules."""

    # Scoring rules may not test what sales fills in after qualifying (leakage).
    refuses_post_qualification = False

    field = forms.ChoiceField(label="Field", choices=field_choices)
    custom_key = forms.CharField(
        label="Custom attribute",
        required=False,
        max_length=60,
        help_text="The key of a capture-form field or imported column, e.g. total_visits.",
    )
    operator = forms.ChoiceField(label="Operator", choices=Operator.choices)
    value = forms.CharField(
        label="Value",
        required=False,
        max_length=5000,
        help_text="Separate several values with commas; for “between”, give “low, high”.",
    )

    def _initial_condition(self, field: str, operator: str, value: Any) -> None:
        if field.startswith("custom."):
            self.initial.setdefault("field", CUSTOM_FIELD)
            self.initial.setdefault("custom_key", field.removeprefix("custom."))
        elif field:
            self.initial.setdefault("field", field)
        if operator:
            self.initial.setdefault("operator", operator)
        self.initial.setdefault("value", value_text(operator, value))

    def clean_condition(self) -> tuple[str, str, Any] | None:
        """(field, operator, normalized value), or None with the errors added."""
        data = self.cleaned_data
        choice, operator = data.get("field"), data.get("operator")
        if not choice:
            return None
        if choice == CUSTOM_FIELD:
            key = (data.get("custom_key") or "").strip()
            if not key:
                self.add_error("custom_key", "Name the custom attribute, e.g. total_visits.")
                return None
            field, error_field = f"custom.{key}", "custom_key"
        else:
            field, error_field = choice, "field"
        try:
            spec = F_.field_spec(field)
        except F_.RuleError as exc:
            self.add_error(error_field, str(exc))
            return None
        if self.refuses_post_qualification and field in post_qualification_fields():
            self.add_error(
                error_field,
                f"{spec.label} is filled in by sales after qualification, so it can't score "
                "leads: a score built on it only repeats what sales already decided.",
            )
            return None
        if not operator:
            return None
        if operator not in OPERATORS_BY_KIND[spec.kind]:
            self.add_error("operator", f"{spec.label} {KIND_HINTS[spec.kind]}.")
            return None
        try:
            value = F_.normalize_value(field, operator, data.get("value", ""))
            F_.condition(field, operator, value)  # compiles exactly as the engine will
        except F_.RuleError as exc:
            self.add_error("value", str(exc))
            return None
        return field, operator, value


def _group_label(group: ScoreGroup) -> str:
    return f"{group.name} (cap {group.cap})" if group.cap is not None else group.name


class _RuleForm(_ConditionFields):
    """What fit and engagement rules share: name, points, group."""

    kind: str = ""

    name = forms.CharField(
        label="Name",
        required=False,
        max_length=200,
        help_text="Shown in the score breakdown. Leave empty to use the condition.",
    )
    points = _bounded_int(
        "Points",
        -POINTS_LIMIT,
        POINTS_LIMIT,
        POINTS_MESSAGE,
        help_text="Negative points lower the score (e.g. −10 for students).",
    )
    group = forms.ModelChoiceField(
        label="Group",
        queryset=ScoreGroup.objects.none(),
        required=False,
        empty_label="No group",
        help_text="A group's cap limits what all its rules add up to.",
    )

    def __init__(self, data=None, *, instance: ScoringRule, **kwargs):
        self.instance = instance
        super().__init__(data, **kwargs)
        # Resolved per request: the queryset is scoped to the active organization.
        self.fields["group"].queryset = ScoreGroup.objects.order_by("name")
        self.fields["group"].label_from_instance = _group_label
        if instance.pk:
            self.initial.update(name=instance.name, points=instance.points, group=instance.group_id)

    def build_rule(self) -> ScoringRule:
        """An unsaved copy of the instance with the cleaned values (the form is valid)."""
        rule = copy.copy(self.instance)
        rule.kind = self.kind
        rule.points = self.cleaned_data["points"]
        rule.group = self.cleaned_data["group"]
        self.apply(rule)
        rule.name = self.cleaned_data["name"].strip() or describe_rule(rule)[:200]
        return rule

    def apply(self, rule: ScoringRule) -> None:
        raise NotImplementedError

    def _check_model(self) -> None:
        """Last guard: the model's own validators and constraints."""
        try:
            # The organization and group are the active tenant's, and the form's own
            # bounds cover the check constraints: no database round trip needed.
            self.build_rule().full_clean(
                exclude=["organization", "group"], validate_unique=False, validate_constraints=False
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    self.add_error(field if field in self.fields else None, error)


class FitRuleForm(_RuleForm):
    kind = RuleKind.FIT
    refuses_post_qualification = True

    def __init__(self, data=None, *, instance: ScoringRule, **kwargs):
        super().__init__(data, instance=instance, **kwargs)
        if instance.pk:
            self._initial_condition(instance.field, instance.operator, instance.value)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            Fieldset(
                "When a lead…",
                *_condition_layout(),
            ),
            Fieldset(
                "…it gets",
                _row(*POINTS_ROW),
                "name",
            ),
        )

    def clean(self):
        super().clean()
        self._condition = self.clean_condition()
        if self._condition and not self.errors:
            self._check_model()
        return self.cleaned_data

    def apply(self, rule: ScoringRule) -> None:
        rule.field, rule.operator, rule.value = self._condition
        rule.activity_kinds = []
        rule.min_count, rule.window_days, rule.max_points = 1, None, None
        rule.per_occurrence = rule.first_only = False
        rule.half_life_days = None


class ScoringMode:
    ONCE = "once"
    PER_OCCURRENCE = "per_occurrence"
    FIRST_ONLY = "first_only"
    CHOICES = [
        (ONCE, "Once — the newest matching activity"),
        (PER_OCCURRENCE, "For every matching activity"),
        (FIRST_ONLY, "Only the first matching activity (e.g. first email open)"),
    ]


def _mode_of(rule: ScoringRule) -> str:
    if rule.first_only:
        return ScoringMode.FIRST_ONLY
    return ScoringMode.PER_OCCURRENCE if rule.per_occurrence else ScoringMode.ONCE


class EngagementRuleForm(_RuleForm):
    kind = RuleKind.ENGAGEMENT

    activity_kinds = forms.MultipleChoiceField(
        label="Activities",
        choices=ActivityKind.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one activity."},
    )
    property_key = forms.CharField(
        label="Only where the property",
        required=False,
        max_length=60,
        help_text="Optional: url, form, campaign, utm_campaign…",
        widget=forms.TextInput(attrs={"list": "property-keys", "placeholder": "any"}),
    )
    property_operator = forms.ChoiceField(
        label="Compare",
        required=False,
        choices=[("", "—"), *((op, Operator(op).label) for op in TEXT_OPERATORS)],
    )
    property_value = forms.CharField(label="Property value", required=False, max_length=5000)
    min_count = _bounded_int(
        "At least (times)",
        1,
        10_000,
        "Give a count between 1 and 10,000.",
        initial=1,
    )
    window_days = _bounded_int(
        "Within the last (days)",
        1,
        MAX_WINDOW_DAYS,
        WINDOW_MESSAGE,
        required=False,
        help_text="Empty = activities of any age.",
    )
    mode = forms.ChoiceField(
        label="Points are given",
        choices=ScoringMode.CHOICES,
        initial=ScoringMode.ONCE,
        widget=forms.RadioSelect,
    )
    max_points = _bounded_int(
        "Cap (max points from this rule)",
        1,
        BIG,
        f"The cap is 1 to {BIG:,} points; leave it empty for no cap.",
        required=False,
        help_text="Useful with “for every activity”: e.g. +2 per click, max 10.",
    )
    half_life_days = _bounded_int(
        "Half-life override (days)",
        1,
        MAX_WINDOW_DAYS,
        HALF_LIFE_MESSAGE,
        required=False,
        help_text="Points halve every N days. Empty = the group's or the organization's.",
    )

    def __init__(self, data=None, *, instance: ScoringRule, **kwargs):
        super().__init__(data, instance=instance, **kwargs)
        # The condition fields belong to fit rules; engagement has its own filter.
        for name in ("field", "custom_key", "operator", "value"):
            del self.fields[name]
        if instance.pk:
            self.initial.update(
                activity_kinds=list(instance.activity_kinds or []),
                property_key=instance.field,
                property_operator=instance.operator,
                property_value=value_text(instance.operator, instance.value),
                min_count=instance.min_count,
                window_days=instance.window_days,
                mode=_mode_of(instance),
                max_points=abs(instance.max_points) if instance.max_points is not None else None,
                half_life_days=instance.half_life_days,
            )
        self.helper = FormHelper()
        self.helper.form_tag = False
        keys = "".join(f'<option value="{k}">{text}</option>' for k, text in PROPERTY_KEYS.items())
        self.helper.layout = Layout(
            Fieldset(
                "When a lead has…",
                Field("activity_kinds", wrapper_class="activity-kinds"),
                _row(
                    ("property_key", "col-md-4"),
                    ("property_operator", "col-md-3"),
                    ("property_value", "col-md-5"),
                ),
                HTML(f'<datalist id="property-keys">{keys}</datalist>'),
                _row(("min_count", "col-md-4"), ("window_days", "col-md-4")),
            ),
            Fieldset(
                "…it gets",
                _row(*POINTS_ROW),
                "mode",
                _row(("max_points", "col-md-4"), ("half_life_days", "col-md-4")),
                "name",
            ),
        )

    def clean(self):
        super().clean()
        self._filter = self._clean_property_filter()
        if not self.errors:
            self._check_model()
        return self.cleaned_data

    def _clean_property_filter(self) -> tuple[str, str, Any]:
        data = self.cleaned_data
        key = (data.get("property_key") or "").strip()
        operator = data.get("property_operator") or ""
        raw = data.get("property_value", "")
        if not key and not operator:
            if raw.strip():
                self.add_error("property_key", "Name the property this value is for (e.g. url).")
            return "", "", None
        if not key:
            self.add_error("property_key", "Name the property to compare (e.g. url).")
            return "", "", None
        if not operator:
            self.add_error("property_operator", "Choose how to compare the property.")
            return "", "", None
        if key != "campaign" and not F_.CUSTOM_KEY.match(key):
            self.add_error(
                "property_key",
                "Property names use lower-case letters, digits and _ (e.g. url, utm_campaign).",
            )
            return "", "", None
        try:
            value = F_.normalize_value("custom.property", operator, raw)
            engine.property_condition(key, operator, value)  # what the engine compiles
        except F_.RuleError as exc:
            self.add_error("property_value", str(exc))
            return "", "", None
        return key, operator, value

    def apply(self, rule: ScoringRule) -> None:
        data = self.cleaned_data
        rule.field, rule.operator, rule.value = self._filter
        rule.activity_kinds = list(data["activity_kinds"])
        rule.min_count = data["min_count"]
        rule.window_days = data["window_days"]
        mode = data["mode"]
        rule.per_occurrence = mode == ScoringMode.PER_OCCURRENCE
        rule.first_only = mode == ScoringMode.FIRST_ONLY
        rule.max_points = data["max_points"]
        rule.half_life_days = data["half_life_days"]


def rule_form_class(kind: str) -> type[_RuleForm]:
    return EngagementRuleForm if kind == RuleKind.ENGAGEMENT else FitRuleForm


class GateForm(_ConditionFields):
    """A gating rule: leads meeting the condition never become MQLs."""

    reason = forms.CharField(
        label="Reason shown on the lead",
        max_length=200,
        help_text="E.g. “Competitor”, “Country not served”, “Student”.",
    )
    is_active = forms.BooleanField(label="Active", required=False, initial=True)

    def __init__(self, data=None, *, instance: GatingRule, **kwargs):
        self.instance = instance
        super().__init__(data, **kwargs)
        if instance.pk:
            self.initial.update(reason=instance.reason, is_active=instance.is_active)
            self._initial_condition(instance.field, instance.operator, instance.value)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            "reason",
            *_condition_layout(),
            "is_active",
        )

    def clean(self):
        super().clean()
        self._condition = self.clean_condition()
        return self.cleaned_data

    def build_gate(self) -> GatingRule:
        gate = copy.copy(self.instance)
        gate.reason = self.cleaned_data["reason"].strip()
        gate.field, gate.operator, gate.value = self._condition
        gate.is_active = self.cleaned_data["is_active"]
        return gate


GRADES = engine.GRADES  # best first; below D is F


class SettingsForm(forms.Form):
    mql_threshold = _bounded_int(
        "MQL threshold",
        1,
        BIG,
        f"The threshold is 1 to {BIG:,} points.",
        help_text="A lead whose total score reaches this becomes a marketing-qualified lead.",
    )
    min_fit_grade = forms.ChoiceField(
        label="Minimum fit grade",
        required=False,
        choices=[("", "Any grade"), *((g, f"{g} or better") for g in GRADES)],
        help_text="E.g. “B or better”: a high score from a poor-fit lead is not an MQL.",
    )
    grade_a = _bounded_int("A from", -BIG, BIG, "Out of range.")
    grade_b = _bounded_int("B from", -BIG, BIG, "Out of range.")
    grade_c = _bounded_int("C from", -BIG, BIG, "Out of range.")
    grade_d = _bounded_int("D from", -BIG, BIG, "Out of range.", help_text="Below D is F.")
    hot = _bounded_int("Hot from", 1, BIG, f"Give 1 to {BIG:,} points.")
    warm = _bounded_int(
        "Warm from", 1, BIG, f"Give 1 to {BIG:,} points.", help_text="Below warm is cold."
    )
    half_life_days = _bounded_int(
        "Engagement half-life (days)",
        1,
        MAX_WINDOW_DAYS,
        f"The half-life is 1 to {MAX_WINDOW_DAYS} days; leave it empty to switch decay off.",
        required=False,
        help_text="Engagement points halve every N days. Empty = no decay. Fit never decays.",
    )
    total_ceiling = _bounded_int(
        "Total ceiling",
        1,
        BIG,
        f"The ceiling is 1 to {BIG:,} points; leave it empty for none.",
        required=False,
        help_text="Optional upper limit of the total score.",
    )
    conversion_window_days = _bounded_int(
        "Conversion window (days)",
        1,
        MAX_WINDOW_DAYS,
        f"The window is 1 to {MAX_WINDOW_DAYS} days; leave it empty for closed leads only.",
        required=False,
        help_text="Learning from outcomes counts a lead still open after this many days as not "
        "converted. Empty: only won and lost leads are learned from.",
    )

    def __init__(self, data=None, *, instance: ScoringSettings, **kwargs):
        self.instance = instance
        super().__init__(data, **kwargs)
        bands = instance.grade_bands or {}
        temps = instance.temperature_bands or {}
        self.initial.update(
            mql_threshold=instance.mql_threshold,
            min_fit_grade=instance.min_fit_grade,
            half_life_days=instance.half_life_days,
            total_ceiling=instance.total_ceiling,
            conversion_window_days=instance.conversion_window_days,
            hot=temps.get("hot"),
            warm=temps.get("warm"),
            **{f"grade_{g.lower()}": bands.get(g) for g in GRADES},
        )
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            Fieldset(
                "Qualification",
                _row(("mql_threshold", "col-md-6"), ("min_fit_grade", "col-md-6")),
            ),
            Fieldset(
                "Fit grades (minimum fit points)",
                _row(*((f"grade_{g.lower()}", "col-6 col-md-3") for g in GRADES)),
            ),
            Fieldset(
                "Temperature (total points)",
                _row(("hot", "col-md-6"), ("warm", "col-md-6")),
            ),
            Fieldset(
                "Decay and limits",
                _row(("half_life_days", "col-md-6"), ("total_ceiling", "col-md-6")),
            ),
            Fieldset("Learning from outcomes", _row(("conversion_window_days", "col-md-6"))),
        )

    def clean(self):
        data = super().clean()
        bands = [data.get(f"grade_{g.lower()}") for g in GRADES]
        if None not in bands and any(a <= b for a, b in itertools.pairwise(bands)):
            self.add_error(
                None,
                "Grade bands must go down from A to D: each grade needs fewer fit points "
                f"than the one above (got A {bands[0]}, B {bands[1]}, C {bands[2]}, D {bands[3]}).",
            )
        hot, warm = data.get("hot"), data.get("warm")
        if hot is not None and warm is not None and hot <= warm:
            self.add_error("hot", "Hot must start above warm.")
        threshold, ceiling = data.get("mql_threshold"), data.get("total_ceiling")
        if threshold and ceiling and ceiling < threshold:
            self.add_error(
                "total_ceiling",
                "The ceiling is below the MQL threshold: no lead could ever qualify.",
            )
        return data

    def build_settings(self) -> ScoringSettings:
        settings = copy.copy(self.instance)
        data = self.cleaned_data
        settings.mql_threshold = data["mql_threshold"]
        settings.min_fit_grade = data["min_fit_grade"]
        settings.grade_bands = {g: data[f"grade_{g.lower()}"] for g in GRADES}
        settings.temperature_bands = {"hot": data["hot"], "warm": data["warm"]}
        settings.half_life_days = data["half_life_days"]
        settings.total_ceiling = data["total_ceiling"]
        settings.conversion_window_days = data["conversion_window_days"]
        return settings


class GroupForm(forms.ModelForm):
    """A score group: its cap limits the sum of its rules' points."""

    class Meta:
        model = ScoreGroup
        fields = ["name", "cap", "half_life_days"]
        labels = {"cap": "Cap (max points)", "half_life_days": "Half-life (days)"}
        help_texts = {
            "cap": "Optional: the group's rules together never give more than this.",
            "half_life_days": "Optional: overrides the organization's decay for this group.",
        }

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        clash = ScoreGroup.objects.filter(name__iexact=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError("A group with this name already exists.")
        return name


class PostQualificationForm(forms.Form):
    """Mark a lead field or custom attribute as filled in by sales."""

    field = forms.ChoiceField(label="Field", choices=field_choices)
    custom_key = forms.CharField(label="Custom attribute", required=False, max_length=60)

    def clean(self):
        data = super().clean()
        choice = data.get("field")
        if choice == CUSTOM_FIELD:
            key = (data.get("custom_key") or "").strip()
            if not key:
                self.add_error("custom_key", "Name the custom attribute, e.g. tags.")
                return data
            choice = f"custom.{key}"
        if choice:
            try:
                F_.field_spec(choice)
            except F_.RuleError as exc:
                self.add_error("custom_key" if choice.startswith("custom.") else "field", str(exc))
            data["field_name"] = choice
        return data


class StarterSetForm(forms.Form):
    """The learning page's offer: a starter set as a draft to compare and apply."""

    business_type = forms.ChoiceField(label="Starter set", choices=BusinessType.choices)
