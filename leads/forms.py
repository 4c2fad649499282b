"""Forms of the lead, company and campaign pages."""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Layout, Row, Submit
from django import forms

from leads.models import Campaign, Lead
from leads.scrub import normalize_country
from leads.services.leads import EDITABLE_FIELDS, MERGEABLE_FIELDS


class CountryField(forms.CharField):
    """A country typed as a name or ISO code (“Germany”, “DE”, “U.S.A.”), cleaned
    to its ISO code; blank is "" and an unknown name a validation error."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 60)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return ""
        code = normalize_country(value)
        if not code:
            raise forms.ValidationError(f"Unknown country “{value}”.")
        return code


class LeadForm(forms.ModelForm):
    class Meta:
        model = Lead
        fields = EDITABLE_FIELDS
        labels = {"company_name": "Company", "company_size": "Company size (employees)"}
        help_texts = {
            "country": "A name or ISO code: “Germany”, “DE”, “U.S.A.”",
            "phone": "Any format; stored as +E.164.",
        }

    country = CountryField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.layout = Layout(
            Row(Column("email"), Column("phone")),
            Row(Column("first_name"), Column("last_name")),
            Row(Column("title"), Column("company_name")),
            Row(Column("industry"), Column("company_size")),
            Row(Column("country"), Column("city")),
            Row(Column("do_not_email"), Column("do_not_call")),
        )
        self.helper.add_input(Submit("submit", "Save lead"))

    def clean(self):
        data = super().clean()
        if not data.get("email") and not self.instance.external_id:
            self.add_error("email", "A lead needs an email address.")
        return data


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "name",
            "channel",
            "cost",
            "starts_on",
            "ends_on",
            "utm_source",
            "utm_medium",
            "utm_campaign",
        ]
        widgets = {
            "starts_on": forms.DateInput(attrs={"type": "date"}),
            "ends_on": forms.DateInput(attrs={"type": "date"}),
        }
        help_texts = {
            "utm_campaign": "Submissions carrying this utm_campaign are credited to the campaign.",
            "cost": "Total spend, used for cost per lead and ROI.",
        }

    def __init__(self, *args, organization=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.helper = FormHelper()
        self.helper.layout = Layout(
            Row(Column("name"), Column("channel")),
            Row(Column("cost"), Column("starts_on"), Column("ends_on")),
            Row(Column("utm_source"), Column("utm_medium"), Column("utm_campaign")),
        )
        self.helper.add_input(Submit("submit", "Save campaign"))

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        clash = Campaign.objects.filter(name__iexact=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError("A campaign with this name already exists.")
        return name

    def clean(self):
        data = super().clean()
        start, end = data.get("starts_on"), data.get("ends_on")
        if start and end and end < start:
            self.add_error("ends_on", "The end date is before the start date.")
        return data


class MergeForm(forms.Form):
    """Which record survives, and per differing field whose value to keep
    (email and record id included): "a" is the first lead of the URL, "b" the
    other. `plan()` turns the answers into the service's keep/drop/chosen."""

    def __init__(self, *args, a: Lead, b: Lead, **kwargs):
        super().__init__(*args, **kwargs)
        self.a, self.b = a, b
        survivor = "b" if _stage_rank(b) > _stage_rank(a) else "a"
        self.fields["survivor"] = forms.ChoiceField(
            choices=[("a", "a"), ("b", "b")], initial=survivor, widget=forms.RadioSelect
        )
        self.rows = []
        for name in MERGEABLE_FIELDS:
            value_a, value_b = getattr(a, name), getattr(b, name)
            same = value_a == value_b
            base = a if survivor == "a" else b
            other = b if base is a else a
            empty = getattr(base, name) in (None, "", False)
            initial = (
                survivor
                if (same or not empty or not getattr(other, name))
                else ("b" if survivor == "a" else "a")
            )
            self.fields[name] = forms.ChoiceField(
                choices=[("a", "a"), ("b", "b")],
                initial=initial,
                required=False,  # not sent = the surviving record's value
                widget=forms.RadioSelect,
            )
            label = Lead._meta.get_field(name).verbose_name
            self.rows.append((self[name], label, value_a, value_b, same))

    def plan(self) -> tuple[Lead, Lead, dict[str, str]]:
        survivor = self.cleaned_data["survivor"]
        keep, drop = (self.a, self.b) if survivor == "a" else (self.b, self.a)
        chosen = {}
        for name in MERGEABLE_FIELDS:
            side = self.cleaned_data.get(name) or survivor
            chosen[name] = "kept" if side == survivor else "dropped"
        return keep, drop, chosen


def _stage_rank(lead: Lead) -> int:
    """Survivor by default: the lead further along the funnel (then the older)."""
    order = ["new", "recycled", "disqualified", "mql", "sal", "sql", "opportunity", "lost", "won"]
    return order.index(lead.stage) if lead.stage in order else 0
