from __future__ import annotations

import zoneinfo

from allauth.account.adapter import get_adapter as get_account_adapter
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms

from accounts.models import BusinessType, Organization, Role
from accounts.services import (
    InvitationError,
    invitation_accept,
    invitation_from_token,
    organization_create,
)
from leadflow.core.mail import validate_single_line

PENDING_INVITATION_SESSION_KEY = "pending_invitation"


class SignupExtraForm(forms.Form):
    """Extra sign-up fields (allauth): the person's name and their organization.

    Someone signing up from an invitation joins that organization instead of
    creating one, so the organization name is optional.
    """

    full_name = forms.CharField(
        max_length=150, required=False, label="Your name", validators=[validate_single_line]
    )
    organization_name = forms.CharField(
        max_length=120,
        validators=[validate_single_line],
        required=False,
        label="Company / organization",
        help_text="Creates your workspace; leave empty if a colleague invited you.",
    )

    def signup(self, request, user) -> None:
        user.full_name = self.cleaned_data.get("full_name", "").strip()
        user.save(update_fields=["full_name"])
        token = request.session.pop(PENDING_INVITATION_SESSION_KEY, None)
        if token:
            try:
                invitation = invitation_from_token(token)
            except InvitationError:  # expired/withdrawn meanwhile: create an org instead
                invitation = None
            if invitation and invitation.email.lower() == user.email.lower():
                # The link proves the inbox: allauth stores the address as verified
                # right after this (setup_user_email reads the stash), no mail needed.
                get_account_adapter(request).stash_verified_email(request, invitation.email)
                invitation_accept(invitation=invitation, user=user, verify_email=False)
                return
        organization_create(name=self.cleaned_data.get("organization_name", ""), owner=user)


def _submit_helper(label: str) -> FormHelper:
    helper = FormHelper()
    helper.add_input(Submit("submit", label))
    return helper


class InvitationForm(forms.Form):
    email = forms.EmailField(label="Email address")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.SALES_REP)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _submit_helper("Send invitation")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


TIMEZONE_CHOICES = [(tz, tz) for tz in sorted(zoneinfo.available_timezones()) if "/" in tz] + [
    ("UTC", "UTC")
]


class OrganizationForm(forms.ModelForm):
    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES, initial="UTC")

    class Meta:
        model = Organization
        fields = ["name", "timezone"]

    def __init__(self, *args, submit_label: str = "Save", **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _submit_helper(submit_label)


class OrganizationCreateForm(OrganizationForm):
    """Sign-up: the kind of business picks the starter scoring rules."""

    business_type = forms.ChoiceField(
        label="What kind of business is this?",
        choices=BusinessType.choices,
        initial=BusinessType.B2B,
        widget=forms.RadioSelect,
        help_text="Picks the starter scoring rules; you can change every rule later.",
        required=False,
    )

    def clean_business_type(self) -> str:
        return self.cleaned_data.get("business_type") or BusinessType.B2B


class OrganizationSettingsForm(OrganizationForm):
    class Meta(OrganizationForm.Meta):
        fields = ["name", "timezone", "require_two_factor"]
