"""The email-preferences form of a member's notifications."""

from __future__ import annotations

from django import forms

from pipeline.models import EmailDelivery
from pipeline.services.notifications import PREFERENCES, preference_defaults


class NotificationPreferencesForm(forms.Form):
    """One choice per kind of notice: email it immediately, in a digest, or not."""

    def __init__(self, *args, initial_modes: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        initial_modes = initial_modes or preference_defaults()
        for key, (label, _kinds, _default) in PREFERENCES.items():
            self.fields[key] = forms.ChoiceField(
                label=label,
                choices=EmailDelivery.choices,
                initial=initial_modes[key],
                widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
            )
