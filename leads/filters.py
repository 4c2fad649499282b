"""django-filter sets for the lead and company lists."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q

from accounts.models import Membership, Organization
from accounts.selectors import active_members
from leads.models import Campaign, Channel, Company, Lead, Quality, ScoreBand, ScoreGrade
from leads.search import search_terms, term_q

UNASSIGNED = "none"


class LeadFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    source = django_filters.ChoiceFilter(
        choices=Channel.choices, method="by_source", label="Source", empty_label="Any source"
    )
    campaign = django_filters.ModelChoiceFilter(
        queryset=Campaign.objects.none(), method="by_campaign", empty_label="Any campaign"
    )
    country = django_filters.CharFilter(method="by_country", label="Country")
    quality = django_filters.ChoiceFilter(choices=Quality.choices, empty_label="Any quality")
    grade = django_filters.ChoiceFilter(choices=ScoreGrade.choices, empty_label="Any grade")
    band = django_filters.ChoiceFilter(choices=ScoreBand.choices, empty_label="Any band")
    min_score = django_filters.NumberFilter(field_name="score", lookup_expr="gte", label="Score ≥")
    mql = django_filters.BooleanFilter(
        field_name="mql_eligible",
        label="MQL",
        # Not NullBooleanSelect: its empty choice reads "Unknown"; here it means any.
        widget=forms.Select(choices=[("", "Any"), ("true", "Yes"), ("false", "No")]),
    )
    owner = django_filters.ChoiceFilter(method="by_owner", label="Owner", empty_label="Anyone")
    created = django_filters.DateFromToRangeFilter(
        field_name="created_at",
        label="Created",
        widget=django_filters.widgets.RangeWidget(attrs={"type": "date"}),
    )
    o = django_filters.OrderingFilter(
        fields=(
            ("created_at", "created"),
            ("last_name", "name"),
            ("email", "email"),
            ("company_name", "company"),
            ("country", "country"),
            ("quality", "quality"),
            ("last_activity_at", "activity"),
            ("score", "score"),
            ("grade", "grade"),
        )
    )

    class Meta:
        model = Lead
        fields: list[str] = []

    def __init__(self, *args, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["campaign"].queryset = Campaign.objects.order_by("name")
        # A callable: the members are listed only when an owner is chosen or shown.
        self.filters["owner"].extra["choices"] = lambda: (
            [(UNASSIGNED, "Unassigned")] + [(str(m.pk), m.user.display_name) for m in members]
        )

    @property
    def form(self):
        form = super().form
        for field in form.fields.values():
            widget = field.widget
            css = "form-select" if getattr(widget, "input_type", "") == "select" else "form-control"
            for sub in getattr(widget, "widgets", [widget]):
                sub.attrs.setdefault("class", css)
        return form

    def search(self, queryset, name, value):
        # leads.search's meaning, plus the exact record id a CRM import carries.
        for term in search_terms(value):
            queryset = queryset.filter(term_q(term) | Q(external_id=term))
        return queryset

    def by_source(self, queryset, name, value):
        return queryset.filter(Q(first_source=value) | Q(latest_source=value))

    def by_campaign(self, queryset, name, value):
        return queryset.filter(Q(first_campaign=value) | Q(latest_campaign=value))

    def by_country(self, queryset, name, value):
        from leads.scrub import normalize_country

        code = normalize_country(value) or value.strip()[:2].upper()
        return queryset.filter(country=code)

    def by_owner(self, queryset, name, value):
        if value == UNASSIGNED:
            return queryset.filter(owner__isnull=True)
        return queryset.filter(owner_id=value)


class CompanyFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")

    class Meta:
        model = Company
        fields: list[str] = []

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(domain__icontains=value))


class BulkActionForm(forms.Form):
    ACTIONS = [
        ("assign_owner", "Assign owner"),
        ("add_to_campaign", "Add to campaign"),
        ("mark_junk", "Mark as junk"),
    ]
    action = forms.ChoiceField(choices=ACTIONS)
    lead_ids = forms.TypedMultipleChoiceField(coerce=int, required=False)
    select_all = forms.BooleanField(required=False)
    # A member of the organization, or "none" (unassign); cleaned to a Membership or None.
    owner = forms.ChoiceField(
        required=False,
        error_messages={"invalid_choice": "Choose an owner among your organization's members."},
    )
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.none(), required=False)

    def __init__(self, *args, organization: Organization, **kwargs):
        from leads.bulk import bulk_actions

        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [*self.ACTIONS, *((a.key, a.label) for a in bulk_actions)]
        self._owners: dict[str, Membership] = {}

        def owner_choices():  # lazy: the lead list renders its own select
            self._owners = {str(m.pk): m for m in active_members(organization=organization)}
            people = [(pk, m.user.display_name) for pk, m in self._owners.items()]
            return [("", "Owner —"), (UNASSIGNED, "Unassigned"), *people]

        self.fields["owner"].choices = owner_choices
        self.fields["campaign"].queryset = Campaign.objects.all()
        self.fields["campaign"].empty_label = "Campaign —"
        self.fields["campaign"].widget.attrs["class"] = "form-select form-select-sm w-auto"
        # Ids are checked against the visible queryset by the view, not here.
        self.fields["lead_ids"].choices = [
            (v, v) for v in (self.data.getlist("lead_ids") if self.data else [])
        ]

    def clean_owner(self) -> Membership | str | None:
        value = self.cleaned_data.get("owner", "")
        return self._owners.get(value) if value not in ("", UNASSIGNED) else value

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if not data.get("lead_ids") and not data.get("select_all"):
            raise forms.ValidationError("Select at least one lead.")
        if action == "assign_owner" and data.get("owner") == "" and "owner" not in self.errors:
            self.add_error("owner", "Choose who should own these leads.")
        if action == "add_to_campaign" and not data.get("campaign"):
            self.add_error("campaign", "Choose a campaign.")
        return data
