"""Django forms of capture: the public form built from a CaptureForm's fields,
and the builder's forms (form settings, one field)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

import pycountry
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.core.validators import URLValidator

from leads.models import (
    CUSTOM,
    MAPPABLE_LEAD_FIELDS,
    Campaign,
    CaptureForm,
    CaptureFormField,
    FieldType,
    Lead,
)
from leads.scrub import normalize_country
from leads.services.capture import MAX_VALUE_LENGTH
from leads.services.capture_forms import (
    DEFAULT_MIN_FILL_SECONDS,
    FIELD_ATTRS,
    RESERVED_KEYS,
    field_problems,
    key_from_label,
)

# A plausible name for the field bots fill and people never see; the first one
# the admin has not used as a key.
HONEYPOT_NAMES = ("website", "homepage", "company_website", "fax_number", "url")

_PHONE_RE = re.compile(r"^[+\d\s().\-/x]*$", re.IGNORECASE)


def honeypot_name(fields: Iterable[CaptureFormField]) -> str:
    keys = {f.key for f in fields}
    return next(n for n in HONEYPOT_NAMES if n not in keys)


@cache
def country_choices() -> list[tuple[str, str]]:
    return sorted(((c.alpha_2, c.name) for c in pycountry.countries), key=lambda c: c[1])


class CountryField(forms.ChoiceField):
    """A country select that also takes a name or code ("Germany", "U.S.") from
    a hand-written form on the customer's site, stored as the ISO code."""

    def to_python(self, value: Any) -> str:
        text = super().to_python(value)
        return (normalize_country(text) or text) if text else ""


def _max_length(field: CaptureFormField) -> int:
    if field.maps_to in MAPPABLE_LEAD_FIELDS:
        try:
            column = Lead._meta.get_field(field.maps_to)
        except LookupError:
            return MAX_VALUE_LENGTH
        return getattr(column, "max_length", None) or MAX_VALUE_LENGTH
    return MAX_VALUE_LENGTH


def _validate_phone(value: str) -> None:
    digits = sum(ch.isdigit() for ch in value)
    if not _PHONE_RE.match(value) or not 5 <= digits <= 20:
        raise forms.ValidationError("Enter a valid phone number.", code="invalid_phone")


def _form_field(field: CaptureFormField) -> forms.Field:
    common = {"label": field.label, "required": field.required, "help_text": field.help_text}
    kind = field.field_type
    if kind == FieldType.EMAIL:
        return forms.EmailField(
            max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}), **common
        )
    if kind == FieldType.PHONE:
        return forms.CharField(
            max_length=32,
            validators=[_validate_phone],
            widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
            **common,
        )
    if kind == FieldType.SELECT:
        return forms.ChoiceField(
            choices=[("", "Choose…"), *((o, o) for o in field.options)], **common
        )
    if kind == FieldType.COUNTRY:
        return CountryField(choices=[("", "Choose…"), *country_choices()], **common)
    if kind == FieldType.CHECKBOX:
        return forms.BooleanField(**common)
    widget = {
        FieldType.HIDDEN: forms.HiddenInput(),
        FieldType.TEXTAREA: forms.Textarea(attrs={"rows": 4}),
    }.get(kind, forms.TextInput())
    return forms.CharField(max_length=_max_length(field), widget=widget, **common)


_WIDGET_CLASSES = {
    forms.CheckboxInput: "form-check-input",
    forms.Select: "form-select",
    forms.HiddenInput: "",
}


class PublicCaptureForm(forms.Form):
    """The visitor's form: one Django field per CaptureFormField, in order, plus
    the consent checkbox when the form has consent text. The honeypot and the
    fill-time token are rendered by the template and checked by the service."""

    def __init__(
        self,
        *args: Any,
        fields: Iterable[CaptureFormField],
        consent_text: str = "",
        **kwargs: Any,
    ):
        kwargs.setdefault("auto_id", "lf-%s")
        super().__init__(*args, **kwargs)
        self.capture_fields = list(fields)
        for item in self.capture_fields:
            self.fields[item.key] = _form_field(item)
            if item.field_type == FieldType.HIDDEN and item.default_value:
                self.fields[item.key].initial = item.default_value
        if consent_text:
            self.fields["consent"] = forms.BooleanField(
                required=False, label=consent_text, widget=forms.CheckboxInput()
            )
        for bound in self.fields.values():
            css = _WIDGET_CLASSES.get(type(bound.widget), "form-control")
            if css:
                bound.widget.attrs["class"] = css

    @classmethod
    def prefill(cls, query: Mapping[str, Any], fields: Iterable[CaptureFormField]) -> dict:
        """Initial values from the page's query string (?email=…&utm_campaign=…)."""
        return {
            f.key: query[f.key] for f in fields if f.key in query and f.key not in RESERVED_KEYS
        }


# --- the builder ---------------------------------------------------------------


def _helper(label: str) -> FormHelper:
    helper = FormHelper()
    helper.add_input(Submit("submit", label))
    return helper


class CaptureFormSettingsForm(forms.ModelForm):
    # Declared so the class can be built outside a tenant scope; the queryset is
    # the active organization's campaigns, set per instance.
    default_campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.none(),
        required=False,
        empty_label="No campaign",
        help_text="Leads from this form are attributed to it; without one, the visitor's "
        "utm_campaign / utm_source pick a matching campaign.",
    )
    redirect_url = forms.URLField(
        required=False,
        assume_scheme="https",
        validators=[URLValidator(schemes=["http", "https"])],
        label="Redirect URL",
        help_text="Send visitors here after submitting instead of showing the message "
        "(http or https).",
    )
    min_fill_seconds = forms.IntegerField(
        min_value=0,
        max_value=120,
        required=False,
        initial=DEFAULT_MIN_FILL_SECONDS,
        label="Minimum fill time (seconds)",
        help_text=f"Faster submissions are treated as bots (empty: {DEFAULT_MIN_FILL_SECONDS}). "
        "0 turns the check off.",
    )

    class Meta:
        model = CaptureForm
        fields = [
            "name",
            "default_campaign",
            "activity_kind",
            "submit_label",
            "success_message",
            "redirect_url",
            "consent_text",
            "double_opt_in",
            "min_fill_seconds",
            "is_active",
        ]
        labels = {
            "activity_kind": "A submission counts as",
            "is_active": "Active",
            "double_opt_in": "Double opt-in",
        }
        widgets = {
            "success_message": forms.Textarea(attrs={"rows": 3}),
            "consent_text": forms.Textarea(attrs={"rows": 2}),
        }
        help_texts = {
            "consent_text": "When set, the form shows an opt-in checkbox with this text.",
            "double_opt_in": "Ticking the box sends a confirmation email; consent is recorded"
            " only when its link is confirmed.",
            "is_active": "Inactive forms answer visitors with a friendly “closed” page.",
        }

    def __init__(self, *args: Any, submit_label: str = "Save", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["default_campaign"].queryset = Campaign.objects.order_by("name")
        self.helper = _helper(submit_label)

    def clean_redirect_url(self) -> str:
        return self.cleaned_data.get("redirect_url") or ""

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("double_opt_in") and not (data.get("consent_text") or "").strip():
            self.add_error(
                "double_opt_in", "Double opt-in needs a consent text: the box people tick."
            )
        return data

    def clean_min_fill_seconds(self) -> int:
        value = self.cleaned_data.get("min_fill_seconds")
        return DEFAULT_MIN_FILL_SECONDS if value is None else value

    def validate_unique(self) -> None:
        # The organization isn't a form field; the service checks the name per org.
        pass


class CaptureFormFieldForm(forms.ModelForm):
    maps_to = forms.ChoiceField(
        label="Fills",
        choices=[(CUSTOM, "Custom attribute (kept under its key)"), *MAPPABLE_LEAD_FIELDS.items()],
        initial=CUSTOM,
    )
    options = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Select fields only: one option per line.",
    )

    class Meta:
        model = CaptureFormField
        fields = list(FIELD_ATTRS)
        labels = {"key": "Key", "field_type": "Type", "default_value": "Value"}
        help_texts = {
            "key": "The input's name in the form post, made from the label (e.g. job_title); "
            "change it if you like: lower-case letters, digits, _ and -.",
            "default_value": "Hidden fields only: the value sent (the page's query string "
            "can override it).",
        }

    def __init__(self, *args: Any, capture_form: CaptureForm, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.capture_form = capture_form
        if self.instance.pk:
            self.initial["options"] = "\n".join(self.instance.options or [])
        # Left empty, the key is made from the label (static/js/form-builder.js
        # fills it in as the label is typed, until the key is edited by hand).
        self.fields["key"].required = False
        self.fields["key"].widget.attrs.update(
            {"data-key-from": "id_label", "data-key-taken": " ".join(self._taken_keys())}
        )
        if self.instance.pk:
            self.fields["key"].widget.attrs["data-key-edited"] = "1"
        # The page writes the <form> tag: it carries the live-preview htmx attributes.
        self.helper = FormHelper()
        self.helper.form_tag = False

    def _taken_keys(self) -> list[str]:
        fields = CaptureFormField.objects.filter(form=self.capture_form)
        if self.instance.pk:
            fields = fields.exclude(pk=self.instance.pk)
        return sorted(fields.values_list("key", flat=True))

    def clean_key(self) -> str:
        key = (self.cleaned_data.get("key") or "").strip().lower()
        if not key:
            key = key_from_label(self.data.get("label") or "", self._taken_keys())
        return key

    def clean_options(self) -> list[str]:
        return (self.cleaned_data.get("options") or "").splitlines()

    def clean(self) -> dict:
        cleaned = super().clean()
        problems = field_problems(
            form=self.capture_form,
            values=self.values(),
            instance=self.instance if self.instance.pk else None,
        )
        for name, message in problems.items():
            if name in self.fields and name not in self.errors:
                self.add_error(name, message)
        return cleaned

    def validate_unique(self) -> None:
        # Key uniqueness per form is checked (with a clearer message) by field_problems.
        pass

    def values(self) -> dict[str, Any]:
        """The field's attributes as the builder services take them."""
        data = {name: self.cleaned_data.get(name) for name in self.Meta.fields}
        data["options"] = [o.strip() for o in data.get("options") or [] if o.strip()]
        data["required"] = bool(data.get("required"))
        return data

    def draft(self) -> CaptureFormField:
        """An unsaved field from whatever was typed so far (for the live preview)."""
        raw = self.data
        kind = raw.get("field_type") if raw.get("field_type") in FieldType.values else "text"
        label = (raw.get("label") or "").strip() or "Untitled field"
        return CaptureFormField(
            pk=self.instance.pk,
            form=self.capture_form,
            position=self.instance.position,
            key=(raw.get("key") or "").strip().lower() or "untitled",
            label=label[:200],
            field_type=kind,
            required=raw.get("required") in ("on", "true", "1", "True"),
            options=[o.strip() for o in (raw.get("options") or "").splitlines() if o.strip()],
            maps_to=raw.get("maps_to") or CUSTOM,
            help_text=(raw.get("help_text") or "")[:300],
            default_value=(raw.get("default_value") or "")[:300],
        )
