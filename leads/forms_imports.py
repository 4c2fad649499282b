"""Forms of the CSV import: the upload, and the column mapping with its settings."""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms

from leads.importing import (
    MAX_IMPORT_BYTES,
    ImportFileError,
    MappingError,
    check_size,
    custom_keys,
    format_size,
    target_choices,
    validate_mapping,
)
from leads.models import Campaign
from leads.services.imports import ConsentBasis


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text=(
            "UTF-8 or Excel CSV, separated by commas, semicolons or tabs, with a header row; "
            f"up to {format_size(MAX_IMPORT_BYTES)}."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.tsv,.txt,text/csv"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("upload", "Upload and map columns"))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            check_size(upload.size)
        except ImportFileError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return upload


class ImportMappingForm(forms.Form):
    """One "import as" select per column, plus the campaign and the consent basis."""

    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.none(),
        required=False,
        empty_label="No campaign",
        help_text="Its channel becomes the leads' source unless a column gives one.",
    )
    consent_basis = forms.ChoiceField(
        choices=ConsentBasis.choices,
        initial=ConsentBasis.NONE,
        widget=forms.RadioSelect,
        label="Email consent",
        help_text="Opt-ins are recorded with the file name as their origin.",
    )

    def __init__(self, *args, header: list[str], mapping: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.header = header
        self.fields["campaign"].queryset = Campaign.objects.all()  # the active organization's
        for position, (name, key) in enumerate(zip(header, custom_keys(header), strict=True)):
            self.fields[self.column_field(position)] = forms.ChoiceField(
                label=name,
                choices=target_choices(key),
                required=False,
                initial=mapping.get(name, ""),
                widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
            )

    @staticmethod
    def column_field(position: int) -> str:
        return f"col_{position}"

    def columns(self) -> list[forms.BoundField]:
        return [self[self.column_field(i)] for i in range(len(self.header))]

    def mapping(self) -> dict[str, str]:
        """The chosen mapping (valid selects only), or the initial one when unbound."""
        if not self.is_bound:
            return {
                name: self.fields[self.column_field(i)].initial
                for i, name in enumerate(self.header)
            }
        data = getattr(self, "cleaned_data", {})
        return {name: data.get(self.column_field(i)) or "" for i, name in enumerate(self.header)}

    def settings(self) -> tuple[Campaign | None, str]:
        data = getattr(self, "cleaned_data", {}) if self.is_bound else {}
        return data.get("campaign"), data.get("consent_basis") or ConsentBasis.NONE

    def clean(self):
        cleaned = super().clean()
        try:
            validate_mapping(self.header, self.mapping())
        except MappingError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return cleaned
