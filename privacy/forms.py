from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms

from privacy.models import PrivacySettings


class PersonForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_action = ""
        self.helper.add_input(Submit("find", "Find what we hold"))


class RetentionForm(forms.ModelForm):
    class Meta:
        model = PrivacySettings
        fields = ["retention_days"]
        labels = {"retention_days": "Retention (days)"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("save_retention", "Save retention"))
