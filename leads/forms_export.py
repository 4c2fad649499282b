"""The lead export's column chooser."""

from __future__ import annotations

from django import forms

from leads import exports


class LeadExportForm(forms.Form):
    columns = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one column."},
    )
    # The lead list's filters, carried over as they were.
    query = forms.CharField(required=False, widget=forms.HiddenInput, max_length=4000)

    def __init__(self, *args, custom_labels: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["columns"].choices = exports.column_choices(custom_labels)
        self.fields["columns"].initial = exports.DEFAULT_COLUMNS
