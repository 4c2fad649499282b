"""Forms of the pipeline pages: the rep's quick actions (reject, log a touch,
BANT, opportunity, won/lost), hand-offs (mark MQL, reassign) and the settings
(teams, seats, routing rules, the SLA and BANT policy).

Forms check what a person can get wrong in a field (a negative amount, a
missing reason, an unknown field for the operator) and say so next to it; the
services enforce the rules again and their errors land on the form as well.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Layout, Row
from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone

from accounts.models import Organization, Role
from leadflow.core.badinput import UtcDateTimeField
from leads.models import ActivityKind
from pipeline.errors import RoutingConfigError
from pipeline.models import (
    ROUTING_FIELDS,
    Bant,
    BreachAction,
    CallOutcome,
    DealStage,
    FollowUpKind,
    OpportunityStatus,
    Qualification,
    RoutingRule,
    Team,
    TeamMember,
    TimingWindow,
)
from pipeline.routing import clean_conditions
from pipeline.selectors import assignable_members
from pipeline.services.followups import CLOCK_SKEW as FOLLOW_UP_SKEW
from pipeline.stages import RejectReason
from scoring.models import Operator

TOUCH_KINDS = [
    (ActivityKind.CALL.value, "Call"),
    (ActivityKind.MEETING.value, "Meeting"),
    (ActivityKind.NOTE.value, "Note"),
]
CURRENCY_HELP = "Three-letter ISO code, e.g. USD, EUR, GBP."


def _helper(*rows: tuple[str, ...]) -> FormHelper:
    """A tag-less helper (the template owns the <form> for its hx-post): one Row per tuple."""
    helper = FormHelper()
    helper.form_tag = False
    helper.disable_csrf = True
    helper.layout = Layout(*(Row(*(Column(name) for name in row)) for row in rows))
    return helper


def _clean_currency(value: str) -> str:
    value = (value or "").strip().upper()
    if len(value) != 3 or not value.isalpha():
        raise forms.ValidationError("Use a three-letter currency code such as USD or EUR.")
    return value


def _member_label(membership) -> str:
    return f"{membership.user.display_name} ({membership.get_role_display()})"


# --- Quick actions on a lead ------------------------------------------------------------


class RejectForm(forms.Form):
    reason_code = forms.ChoiceField(label="Why", choices=RejectReason.CHOICES)
    reason = forms.CharField(
        label="Note",
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "What happened (required for “Other”)"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper(("reason_code", "reason"))

    def clean(self):
        data = super().clean()
        if data.get("reason_code") == "other" and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why the lead goes back to nurture.")
        return data

    def reason_text(self) -> str:
        """The transition's reason: the note, or the code's label when there is none."""
        data = self.cleaned_data
        return data["reason"].strip() or RejectReason.LABELS[data["reason_code"]]


class OrgTimeForm(forms.Form):
    """A form whose typed date-times (datetime-local: no offset) are the
    organization's local time, `zone` (Organization.timezone)."""

    def __init__(self, *args, zone: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = zone

    def full_clean(self):
        zone = ZoneInfo(self.zone) if self.zone else timezone.get_current_timezone()
        with timezone.override(zone):
            super().full_clean()


class TouchForm(OrgTimeForm):
    kind = forms.ChoiceField(label="Type", choices=TOUCH_KINDS, initial=ActivityKind.CALL)
    outcome = forms.ChoiceField(
        label="Call outcome",
        required=False,
        choices=[("", "—"), *CallOutcome.choices],
        help_text="For a call: reports count the attempts before the first connect.",
    )
    duration_minutes = forms.IntegerField(
        label="Minutes",
        required=False,
        min_value=0,
        max_value=24 * 60,
        help_text="How long the call took.",
    )
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Outcome, what was said…"}),
    )
    occurred_at = UtcDateTimeField(
        label="When",
        required=False,
        help_text="Empty = now.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    # The next step: a follow-up task created with the touch (optional).
    next_kind = forms.ChoiceField(
        label="Next step", choices=FollowUpKind.choices, initial=FollowUpKind.CALL
    )
    next_title = forms.CharField(
        label="Next step title",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Send the pricing deck"}),
    )
    next_due = UtcDateTimeField(
        label="Next step due",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["next_kind"].required = False
        self.helper = _helper(
            ("kind", "outcome", "duration_minutes", "occurred_at"),
            ("note",),
            ("next_kind", "next_title", "next_due"),
        )

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind == ActivityKind.NOTE and not (data.get("note") or "").strip():
            self.add_error("note", "A note needs some text.")
        if kind != ActivityKind.CALL:
            data["outcome"], data["duration_minutes"] = "", None
        title, due = (data.get("next_title") or "").strip(), data.get("next_due")
        if title and not due:
            self.add_error("next_due", "When is the next step due?")
        elif due and not title:
            self.add_error("next_title", "Name the next step.")
        elif due:
            _check_future(self, "next_due", due)
        return data

    def touch_fields(self) -> dict[str, Any]:
        """The lead_touch keyword arguments (the next step only when one is given)."""
        data = self.cleaned_data
        minutes = data.get("duration_minutes")
        fields: dict[str, Any] = {
            "kind": data["kind"],
            "note": data["note"].strip(),
            "occurred_at": data["occurred_at"],
            "call_outcome": data.get("outcome") or "",
            "duration_seconds": None if minutes is None else minutes * 60,
        }
        if data.get("next_title"):
            fields["next_step"] = {
                "kind": data.get("next_kind") or FollowUpKind.CALL,
                "title": data["next_title"].strip(),
                "due_at": data["next_due"],
            }
        return fields


def _check_future(form: forms.Form, name: str, due: dt.datetime) -> None:
    if due < timezone.now() - FOLLOW_UP_SKEW:
        form.add_error(name, "A task cannot be due in the past.")


class FollowUpForm(OrgTimeForm):
    """A task on a lead or deal. Admins pick who it is for; a rep's tasks are their own."""

    kind = forms.ChoiceField(label="Type", choices=FollowUpKind.choices, initial=FollowUpKind.CALL)
    title = forms.CharField(label="What", max_length=200)
    due_at = UtcDateTimeField(
        label="Due", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    assignee = forms.ModelChoiceField(label="For", queryset=None, required=False)
    notes = forms.CharField(
        label="Notes", required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, organization: Organization, membership=None, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["assignee"]
        field.queryset = assignable_members(organization=organization)
        field.label_from_instance = _member_label
        field.empty_label = "The lead's owner"
        if membership is not None and membership.role == Role.SALES_REP:
            del self.fields["assignee"]  # a rep's tasks are their own
            self.helper = _helper(("kind", "title", "due_at"), ("notes",))
        else:
            self.helper = _helper(("kind", "title", "due_at", "assignee"), ("notes",))

    def clean_due_at(self):
        due = self.cleaned_data["due_at"]
        _check_future(self, "due_at", due)
        return due

    def follow_up_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "kind": data["kind"],
            "title": data["title"],
            "due_at": data["due_at"],
            "notes": data.get("notes") or "",
            "assignee": data.get("assignee"),
        }


class QualificationForm(forms.ModelForm):
    """BANT. `decision_maker` has three states: unknown, yes, no."""

    class Meta:
        model = Qualification
        labels = {
            "budget_amount": "Budget",
            "budget_currency": "Currency",
            "budget_confirmed": "Budget confirmed",
            "authority_role": "Role in the decision",
            "decision_maker": "Decision maker?",
            "need": "Need (in their words)",
            "timing_window": "Purchase window",
            "timing_date": "or expected date",
        }
        fields = list(labels)
        widgets = {
            "need": forms.Textarea(attrs={"rows": 2}),
            "decision_maker": forms.NullBooleanSelect(),
            "timing_date": forms.DateInput(attrs={"type": "date"}),
        }

    def __init__(self, *args, default_currency: str = "USD", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["budget_amount"].min_value = 0
        self.fields["budget_amount"].widget.attrs["min"] = 0
        self.fields["timing_window"].choices = [("", "Choose…"), *TimingWindow.choices]
        self.fields["budget_currency"].required = False
        self.fields["budget_currency"].help_text = ""
        if not self.instance.budget_currency:
            self.initial["budget_currency"] = default_currency
        self.helper = _helper(
            ("budget_amount", "budget_currency", "budget_confirmed"),
            ("authority_role", "decision_maker"),
            ("need",),
            ("timing_window", "timing_date"),
        )

    def clean_budget_amount(self):
        amount = self.cleaned_data.get("budget_amount")
        if amount is not None and amount < 0:
            raise forms.ValidationError("A budget cannot be negative.")
        return amount

    def clean_budget_currency(self):
        value = self.cleaned_data.get("budget_currency")
        return _clean_currency(value) if (value or "").strip() else ""

    def data_for_service(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) for name in self.Meta.fields}


class OpportunityForm(forms.Form):
    name = forms.CharField(
        label="Deal name", required=False, max_length=200, help_text="Empty = the company's name."
    )
    amount = forms.DecimalField(
        label="Amount",
        min_value=0,
        max_digits=14,
        decimal_places=2,
        error_messages={"min_value": "The amount cannot be negative."},
    )
    currency = forms.CharField(label="Currency", max_length=10, help_text=CURRENCY_HELP)
    expected_close_date = forms.DateField(
        label="Expected close",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    probability = forms.IntegerField(
        label="Probability (%)",
        required=False,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        error_messages={"invalid": "A whole number from 0 to 100."},
    )
    next_step = forms.CharField(label="Next step", required=False, max_length=300)

    def __init__(self, *args, default_currency: str = "USD", **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.setdefault("currency", default_currency)
        self.helper = _helper(
            ("amount", "currency", "probability"),
            ("expected_close_date", "name"),
            ("next_step",),
        )

    def clean_currency(self):
        return _clean_currency(self.cleaned_data.get("currency"))

    def deal_fields(self) -> dict[str, Any]:
        """The keyword arguments of opportunity_open / opportunity_update."""
        data = self.cleaned_data
        names = ("amount", "currency", "expected_close_date", "probability", "next_step")
        return {**{name: data[name] for name in names}, "name": data["name"].strip()}


class CloseForm(forms.Form):
    outcome = forms.ChoiceField(
        label="Outcome",
        choices=[(OpportunityStatus.WON, "Won"), (OpportunityStatus.LOST, "Lost")],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "Why it was won or lost"}),
    )
    closed_on = forms.DateField(
        label="Closed on",
        required=False,
        help_text="Empty = today.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper(("outcome", "closed_on"), ("reason",))

    def clean(self):
        data = super().clean()
        if data.get("outcome") == OpportunityStatus.LOST and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why the deal was lost.")
        closed_on = data.get("closed_on")
        if closed_on and closed_on > dt.date.today() + dt.timedelta(days=1):
            self.add_error("closed_on", "A deal cannot close in the future.")
        return data


class ReasonForm(forms.Form):
    """A hand-made move that needs a reason (mark MQL, recycle, disqualify, reopen)."""

    reason = forms.CharField(
        label="Reason",
        max_length=2000,
        error_messages={"required": "Give a reason; it is kept in the stage history."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper(("reason",))


class AssignForm(forms.Form):
    membership = forms.ModelChoiceField(
        label="Assign to", queryset=None, empty_label="Choose a rep…"
    )
    reason = forms.CharField(label="Reason", required=False, max_length=300)

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["membership"]
        field.queryset = assignable_members(organization=organization)
        field.label_from_instance = _member_label
        self.helper = _helper(("membership", "reason"))


# --- Settings ---------------------------------------------------------------------------


class TeamForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name", "team_lead", "is_default"]
        labels = {"team_lead": "Team lead", "is_default": "Default team"}

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        lead = self.fields["team_lead"]
        lead.queryset = assignable_members(organization=organization)
        lead.label_from_instance = _member_label
        lead.empty_label = "No team lead"
        self.helper = _helper(("name", "team_lead"), ("is_default",))


class TeamMemberForm(forms.ModelForm):
    class Meta:
        model = TeamMember
        fields = ["membership", "capacity", "weight", "is_away"]
        labels = {
            "membership": "Rep",
            "capacity": "Capacity (open leads)",
            "weight": "Weight",
            "is_away": "Away",
        }

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        rep = self.fields["membership"]
        rep.queryset = assignable_members(organization=organization)
        rep.label_from_instance = _member_label
        rep.empty_label = "Choose a rep…"
        if self.instance.pk:
            rep.disabled = True  # a seat belongs to one rep; add another seat instead
        self.helper = _helper(("membership", "capacity", "weight"), ("is_away",))


WEEKDAYS = [
    (0, "Mon"),
    (1, "Tue"),
    (2, "Wed"),
    (3, "Thu"),
    (4, "Fri"),
    (5, "Sat"),
    (6, "Sun"),
]
SLA_KINDS = [
    ("demo_request", "Demo requests"),
    ("contact_request", "Contact requests"),
    ("content_download", "Content downloads"),
    ("default", "Every other MQL"),
]
MAX_SLA_MINUTES = 60 * 24 * 14


def _minutes_field(label: str) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        min_value=1,
        max_value=MAX_SLA_MINUTES,
        error_messages={
            "min_value": "At least 1 minute.",
            "max_value": "At most 14 days (20,160 minutes).",
        },
    )


class PolicyForm(forms.Form):
    """The per-organization SLA, breach handling, BANT subset and PQL rules."""

    bant_required = forms.MultipleChoiceField(
        label="BANT parts required for SQL",
        choices=Bant.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: a rep may qualify without BANT notes.",
    )
    sla_demo_request = _minutes_field("Demo requests (minutes)")
    sla_contact_request = _minutes_field("Contact requests (minutes)")
    sla_content_download = _minutes_field("Content downloads (minutes)")
    sla_default = _minutes_field("Other MQLs (minutes)")
    sla_accept_hours = forms.IntegerField(
        label="Accept or reject within (hours)", min_value=1, max_value=24 * 14
    )
    business_hours_only = forms.BooleanField(label="Count business hours only", required=False)
    hours_start = forms.TimeField(
        label="Business hours from", widget=forms.TimeInput(attrs={"type": "time"})
    )
    hours_end = forms.TimeField(label="to", widget=forms.TimeInput(attrs={"type": "time"}))
    hours_days = forms.TypedMultipleChoiceField(
        label="Working days",
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    breach_action = forms.ChoiceField(label="After a breach", choices=BreachAction.choices)
    second_window_minutes = forms.IntegerField(
        label="Second window (minutes)",
        min_value=1,
        max_value=MAX_SLA_MINUTES,
        help_text="Time the rep still has after the breach notice before the lead moves on.",
    )
    default_currency = forms.CharField(label="Default currency", max_length=10)
    pql_trial_signups = forms.IntegerField(
        label="PQL: trial sign-ups (at least)",
        required=False,
        min_value=1,
        max_value=10_000,
        help_text="Empty = trial sign-ups do not make a PQL.",
    )
    pql_product_events = forms.IntegerField(
        label="PQL: product events (at least)",
        required=False,
        min_value=1,
        max_value=10_000,
        help_text="Empty = product usage does not make a PQL.",
    )

    def __init__(self, *args, policy, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.update(self._initial_from(policy))
        self.helper = _helper(
            ("sla_demo_request", "sla_contact_request", "sla_content_download", "sla_default"),
            ("sla_accept_hours", "breach_action", "second_window_minutes"),
            ("business_hours_only",),
            ("hours_start", "hours_end", "hours_days"),
            ("bant_required", "default_currency"),
            ("pql_trial_signups", "pql_product_events"),
        )

    @staticmethod
    def _initial_from(policy) -> dict[str, Any]:
        sla = policy.sla_first_touch_minutes or {}
        hours = policy.business_hours or {}
        pql = {rule.get("kind"): rule.get("min_count") for rule in policy.pql_rules or []}
        return {
            "bant_required": list(policy.bant_required or []),
            **{f"sla_{key}": sla.get(key, sla.get("default", 60)) for key, _ in SLA_KINDS},
            "sla_accept_hours": policy.sla_accept_hours,
            "business_hours_only": policy.business_hours_only,
            "hours_start": hours.get("start", "09:00"),
            "hours_end": hours.get("end", "17:00"),
            "hours_days": hours.get("days", [0, 1, 2, 3, 4]),
            "breach_action": policy.breach_action,
            "second_window_minutes": policy.second_window_minutes,
            "default_currency": policy.default_currency,
            "pql_trial_signups": pql.get(ActivityKind.TRIAL_SIGNUP),
            "pql_product_events": pql.get(ActivityKind.PRODUCT_EVENT),
        }

    def clean_default_currency(self):
        return _clean_currency(self.cleaned_data.get("default_currency"))

    def clean(self):
        data = super().clean()
        start, end = data.get("hours_start"), data.get("hours_end")
        if start and end and start >= end:
            self.add_error("hours_end", "Business hours must end after they start.")
        if data.get("business_hours_only") and not data.get("hours_days"):
            self.add_error("hours_days", "Pick at least one working day.")
        return data

    def policy_data(self, *, previous_pql: list[dict] | None = None) -> dict[str, Any]:
        """The cleaned values in the shape of PipelinePolicy's fields. A PQL rule keeps
        the window and property filter it had (set through the API); the form edits
        its count, or drops it when the count is emptied."""
        data = self.cleaned_data
        previous = {rule.get("kind"): rule for rule in previous_pql or []}
        pql = [
            {**previous.get(kind, {}), "kind": kind, "min_count": data[name]}
            for kind, name in (
                (ActivityKind.TRIAL_SIGNUP.value, "pql_trial_signups"),
                (ActivityKind.PRODUCT_EVENT.value, "pql_product_events"),
            )
            if data.get(name)
        ]
        return {
            "bant_required": [p for p in Bant.values if p in data["bant_required"]],
            "sla_first_touch_minutes": {key: data[f"sla_{key}"] for key, _ in SLA_KINDS},
            "sla_accept_hours": data["sla_accept_hours"],
            "business_hours_only": data["business_hours_only"],
            "business_hours": {
                "start": data["hours_start"].strftime("%H:%M"),
                "end": data["hours_end"].strftime("%H:%M"),
                "days": sorted(data["hours_days"]),
            },
            "breach_action": data["breach_action"],
            "second_window_minutes": data["second_window_minutes"],
            "default_currency": data["default_currency"],
            "pql_rules": pql,
        }


class ConditionForm(forms.Form):
    """One row of a routing rule's conditions: field, operator, value."""

    field = forms.ChoiceField(
        label="Field",
        required=False,
        choices=[("", "Field…"), *ROUTING_FIELDS.items()],
        widget=forms.Select(attrs={"class": "form-select", "aria-label": "Field"}),
    )
    operator = forms.ChoiceField(
        label="Operator",
        required=False,
        choices=Operator.choices,
        widget=forms.Select(attrs={"class": "form-select", "aria-label": "Operator"}),
    )
    value = forms.CharField(
        label="Value",
        required=False,
        max_length=2000,
        widget=forms.TextInput(
            attrs={"class": "form-control", "placeholder": "e.g. DE, FR, GB", "aria-label": "Value"}
        ),
    )

    def clean(self):
        data = super().clean()
        if not data.get("field"):
            data["condition"] = None
            return data
        if "value" not in data:  # the value's own error is shown
            return data
        raw = {"field": data["field"], "operator": data.get("operator"), "value": data["value"]}
        try:
            data["condition"] = clean_conditions([raw])[0]
        except RoutingConfigError as exc:
            self.add_error("value", str(exc))
        return data


ConditionFormSet = forms.formset_factory(ConditionForm, extra=0, max_num=20, absolute_max=20)
EXTRA_CONDITION_ROWS = 2


def condition_formset(data=None, *, rule: RoutingRule) -> forms.BaseFormSet:
    initial = [
        {
            "field": c.get("field", ""),
            "operator": c.get("operator", ""),
            "value": ", ".join(map(str, c["value"]))
            if isinstance(c.get("value"), list)
            else ("" if c.get("value") is None else c["value"]),
        }
        for c in rule.conditions or []
    ]
    formset = ConditionFormSet(data, initial=initial, prefix="cond")
    if data is None:
        formset.extra = EXTRA_CONDITION_ROWS  # blank rows to add conditions without JavaScript
    return formset


class RoutingRuleForm(forms.ModelForm):
    class Meta:
        model = RoutingRule
        fields = ["name", "priority", "is_active", "target_team", "target_rep", "method"]
        labels = {
            "priority": "Priority",
            "is_active": "Active",
            "target_team": "Route to team",
            "target_rep": "or to one rep",
            "method": "Within the team",
        }
        help_texts = {"priority": "Lower runs first; the first matching rule wins."}

    # Declared so the class body never queries: teams resolve per request, in scope.
    target_team = forms.ModelChoiceField(
        label="Route to team", queryset=Team.objects.none(), required=False, empty_label="—"
    )

    def __init__(self, *args, organization: Organization, conditions=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.conditions = conditions
        self.fields["target_team"].queryset = Team.objects.order_by("name")
        rep = self.fields["target_rep"]
        rep.queryset = assignable_members(organization=organization)
        rep.label_from_instance = _member_label
        rep.empty_label = "—"
        self.helper = _helper(
            ("name", "priority", "is_active"), ("target_team", "target_rep", "method")
        )

    def clean(self):
        data = super().clean()
        if bool(data.get("target_team")) == bool(data.get("target_rep")):
            self.add_error("target_team", "Route to a team or to one rep — pick exactly one.")
        if self.conditions is not None and not self.conditions.is_valid():
            self.add_error(None, "Fix the conditions below.")
        return data

    def cleaned_conditions(self) -> list[dict]:
        """The filled-in condition rows, normalized (blank rows are skipped)."""
        return [
            row.cleaned_data["condition"]
            for row in self.conditions or []
            if row.cleaned_data.get("condition")
        ]


class DealStageForm(forms.ModelForm):
    """A board column: name, probability a deal in it gets, kind (open, or closing as won/lost)."""

    class Meta:
        model = DealStage
        fields = ["name", "probability", "kind"]
        labels = {"probability": "Probability (%)", "kind": "Kind"}
        help_texts = {
            "kind": "Dropping a deal into a won or lost stage closes it.",
            "probability": "A deal moved into this stage gets this probability.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["name"].strip = True
        self.helper = _helper(("name", "probability", "kind"))


class BoardMoveForm(forms.Form):
    """Drop a deal into a column (a reason for lost and for reopening a lost deal)."""

    stage = forms.IntegerField(min_value=1)
    reason = forms.CharField(max_length=1000, required=False)
