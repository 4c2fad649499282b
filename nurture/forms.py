"""Forms of the nurture pages: lists and their filter editor, templates, test
sends, sequences, steps and enrollment.

Each form says what is wrong next to the field; `to_data()` returns the plain
dict the matching service (nurture.services) takes."""

from __future__ import annotations

import re
import zoneinfo
from functools import cache

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Field, Layout, Row
from django import forms

from accounts.models import Organization
from accounts.selectors import active_members
from leadflow.core.mail import validate_single_line
from leads.filters import UNASSIGNED
from leads.forms import CountryField
from leads.models import (
    ActivityKind,
    Campaign,
    CaptureForm,
    Channel,
    LeadStage,
    Quality,
    ScoreBand,
    ScoreGrade,
)
from leads.scrub import normalize_email
from nurture.models import EmailTemplate, ExitCondition, ListKind, NurtureList, Trigger
from nurture.rendering import MERGE_FIELDS, TemplateInvalid, validate_template

MAX_PASTED_EMAILS = 5000
MAX_ACTIVITY_DAYS = 3650
WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]


def _choices(enum, empty: str) -> list:
    return [("", empty), *enum.choices]


class NoHelperForm(forms.Form):
    """Rendered by hand in the template (crispy would wrap it in its own <form>)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False


# --- Lists ---------------------------------------------------------------------------

# The saved filter of a dynamic list: the lead list's query parameters (leads.filters
# .LeadFilter) plus stage and recent activity. Keys are stored as typed here.
FILTER_FIELDS = (
    "q",
    "source",
    "campaign",
    "country",
    "quality",
    "grade",
    "band",
    "min_score",
    "mql",
    "owner",
    "stage",
    "activity_kind",
    "activity_days",
)


class NurtureListForm(NoHelperForm):
    name = forms.CharField(max_length=200)
    description = forms.CharField(max_length=300, required=False)
    kind = forms.ChoiceField(
        choices=ListKind.choices, widget=forms.RadioSelect, initial=ListKind.STATIC
    )

    # The filter editor (dynamic lists).
    q = forms.CharField(
        label="Search", required=False, max_length=200, help_text="Name, email or company."
    )
    source = forms.ChoiceField(label="Source", required=False, choices=_choices(Channel, "Any"))
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.none(), required=False, empty_label="Any campaign"
    )
    country = CountryField(help_text="A name or ISO code.")
    quality = forms.ChoiceField(required=False, choices=_choices(Quality, "Any quality"))
    grade = forms.ChoiceField(required=False, choices=_choices(ScoreGrade, "Any grade"))
    band = forms.ChoiceField(required=False, choices=_choices(ScoreBand, "Any band"))
    min_score = forms.IntegerField(label="Score at least", required=False, min_value=-100000)
    mql = forms.NullBooleanField(
        label="MQL",
        required=False,
        widget=forms.Select(choices=[("unknown", "Either"), ("true", "Yes"), ("false", "No")]),
    )
    owner = forms.ChoiceField(required=False)
    stage = forms.MultipleChoiceField(
        label="Stage is one of",
        required=False,
        choices=LeadStage.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    activity_kind = forms.ChoiceField(
        label="Has activity", required=False, choices=_choices(ActivityKind, "Any or none")
    )
    activity_days = forms.IntegerField(
        label="within days",
        required=False,
        min_value=1,
        max_value=MAX_ACTIVITY_DAYS,
        help_text="Leave empty for any time.",
    )

    def __init__(
        self,
        *args,
        organization: Organization,
        nurture_list: NurtureList | None = None,
        **kwargs,
    ):
        if nurture_list is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": nurture_list.name,
                "description": nurture_list.description,
                "kind": nurture_list.kind,
                **(nurture_list.filter or {}),
            }
        super().__init__(*args, **kwargs)
        self.fields["campaign"].queryset = Campaign.objects.order_by("name")
        # Memberships are not scoped: the organization's own people only.
        self.fields["owner"].choices = [("", "Anyone"), (UNASSIGNED, "Unassigned")] + [
            (str(m.pk), m.user.display_name) for m in active_members(organization=organization)
        ]
        if nurture_list is not None and nurture_list.is_default_community:
            # Recycled leads land on the community list: it stays static.
            self.fields["kind"].disabled = True
        for name in FILTER_FIELDS:
            widget = self.fields[name].widget
            if isinstance(widget, forms.Select) and not isinstance(
                widget, forms.CheckboxSelectMultiple
            ):
                widget.attrs["class"] = "form-select"

    def clean(self):
        data = super().clean()
        if data.get("activity_days") and not data.get("activity_kind"):
            self.add_error("activity_kind", "Choose which activity must have happened.")
        if data.get("kind") == ListKind.DYNAMIC and not self.filter_data():
            self.add_error(None, "A dynamic list needs at least one condition in its filter.")
        return data

    def filter_data(self) -> dict:
        """The non-empty conditions, JSON-ready (ids and numbers stay numbers)."""
        data = getattr(self, "cleaned_data", {})
        saved = {}
        for name in FILTER_FIELDS:
            value = data.get(name)
            if value in (None, "", []):
                continue
            saved[name] = value.pk if isinstance(value, Campaign) else value
        return saved

    def to_data(self) -> dict:
        data = self.cleaned_data
        dynamic = data["kind"] == ListKind.DYNAMIC
        return {
            "name": data["name"].strip(),
            "description": data["description"].strip(),
            "kind": data["kind"],
            "filter": self.filter_data() if dynamic else {},
        }


_EMAIL_SPLIT = re.compile(r"[\s,;]+")


class AddLeadsForm(forms.Form):
    """Emails pasted one per line (commas and semicolons work too)."""

    emails = forms.CharField(
        widget=forms.Textarea(
            attrs={
                "rows": 5,
                "class": "form-control",
                "placeholder": "ana@example.com\nbo@example.org",
            }
        ),
        required=False,
    )
    lead_ids = forms.TypedMultipleChoiceField(coerce=int, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Ids are checked against the organization's leads by the view.
        ids = self.data.getlist("lead_ids") if hasattr(self.data, "getlist") else []
        self.fields["lead_ids"].choices = [(v, v) for v in ids]

    def clean_emails(self) -> list[str]:
        tokens = [t for t in _EMAIL_SPLIT.split(self.cleaned_data.get("emails", "")) if t]
        if len(tokens) > MAX_PASTED_EMAILS:
            raise forms.ValidationError(
                f"Paste at most {MAX_PASTED_EMAILS:,} addresses at a time (got {len(tokens):,})."
            )
        emails, invalid = [], []
        for token in tokens:
            email = normalize_email(token).email
            (emails if email and "@" in email else invalid).append(email or token)
        if invalid:
            shown = ", ".join(invalid[:5]) + ("…" if len(invalid) > 5 else "")
            raise forms.ValidationError(f"Not email addresses: {shown}")
        return list(dict.fromkeys(emails))

    def clean(self):
        data = super().clean()
        if not self.errors and not data.get("emails") and not data.get("lead_ids"):
            raise forms.ValidationError("Paste at least one email address or pick a lead.")
        return data


class LeadIdsForm(forms.Form):
    lead_ids = forms.TypedMultipleChoiceField(coerce=int)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        ids = self.data.getlist("lead_ids") if hasattr(self.data, "getlist") else []
        self.fields["lead_ids"].choices = [(v, v) for v in ids]
        self.fields["lead_ids"].error_messages["required"] = "Select at least one lead."


class BulkAddToListForm(LeadIdsForm):
    """The lead list's "Add to list" bulk action."""

    nurture_list = forms.ModelChoiceField(
        queryset=NurtureList.objects.none(), error_messages={"required": "Choose a list."}
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["nurture_list"].queryset = NurtureList.objects.filter(kind=ListKind.STATIC)


# --- Templates -------------------------------------------------------------------------


class TemplateForm(NoHelperForm):
    name = forms.CharField(max_length=200)
    subject = forms.CharField(
        max_length=300, widget=forms.TextInput(attrs={"placeholder": "{{ first_name }}, …"})
    )
    body_html = forms.CharField(
        label="HTML body",
        widget=forms.Textarea(
            attrs={"rows": 16, "class": "font-monospace small", "spellcheck": "false"}
        ),
    )
    body_text = forms.CharField(
        label="Plain-text part",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "font-monospace small"}),
        help_text="Leave empty to generate it from the HTML.",
    )

    def __init__(self, *args, template: EmailTemplate | None = None, **kwargs):
        if template is not None and template.pk and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": template.name,
                "subject": template.subject,
                "body_html": template.body_html,
                "body_text": template.body_text,
            }
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            validate_template(data["subject"], data["body_html"], data.get("body_text", ""))
        except TemplateInvalid as exc:
            # The message names the part ("Body: …"): show it next to that field.
            message = str(exc)
            part = message.split(":", 1)[0]
            self.add_error(TEMPLATE_PARTS.get(part), message)
        return data

    def to_data(self) -> dict:
        return {k: self.cleaned_data[k] for k in ("name", "subject", "body_html", "body_text")}


TEMPLATE_PARTS = {"Subject": "subject", "Body": "body_html", "Text part": "body_text"}


class PreviewForm(forms.Form):
    subject = forms.CharField(required=False, max_length=300)
    body_html = forms.CharField(required=False)
    body_text = forms.CharField(required=False)
    lead = forms.IntegerField(required=False, min_value=1)
    # The editor's template (none for a new one): names the person's draft slot.
    template = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)


class TestSendForm(forms.Form):
    to_email = forms.EmailField(label="Send a test to")
    lead = forms.IntegerField(required=False, min_value=1)


def merge_fields() -> list[tuple[str, str]]:
    return list(MERGE_FIELDS.items())


# --- Sequences -------------------------------------------------------------------------


@cache
def timezone_choices() -> list[tuple[str, str]]:
    zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC")
    return [("", "The organization's timezone"), *((z, z.replace("_", " ")) for z in zones)]


class SequenceForm(NoHelperForm):
    name = forms.CharField(max_length=200)
    is_active = forms.BooleanField(
        label="Active",
        required=False,
        help_text="Only active sequences enroll leads from their triggers and send emails.",
    )
    trigger_lists = forms.ModelMultipleChoiceField(
        label="When a lead joins",
        queryset=NurtureList.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    trigger_recycled = forms.BooleanField(label="When a lead is recycled", required=False)
    trigger_forms = forms.ModelMultipleChoiceField(
        label="When a capture form creates a lead",
        queryset=CaptureForm.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    exit_on = forms.MultipleChoiceField(
        label="Stop sending when the lead",
        choices=ExitCondition.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    window_enabled = forms.BooleanField(label="Only send inside a window", required=False)
    window_days = forms.TypedMultipleChoiceField(
        label="Days",
        coerce=int,
        choices=WEEKDAYS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    window_start = forms.TimeField(
        label="From", required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    window_end = forms.TimeField(
        label="Until", required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    timezone = forms.ChoiceField(required=False)
    from_name = forms.CharField(max_length=120, required=False, validators=[validate_single_line])
    from_email = forms.EmailField(
        required=False,
        help_text="Leave empty: sequences send from the organization's verified sender.",
    )

    def __init__(self, *args, sequence=None, **kwargs):
        if sequence is not None and sequence.pk and "initial" not in kwargs:
            kwargs["initial"] = self.initial_for(sequence)
        kwargs.setdefault(
            "initial",
            {
                "exit_on": [ExitCondition.MQL, ExitCondition.UNSUBSCRIBED, ExitCondition.BOUNCED],
                "window_days": [0, 1, 2, 3, 4],
                "window_start": "09:00",
                "window_end": "17:00",
            },
        )
        super().__init__(*args, **kwargs)
        self.fields["trigger_lists"].queryset = NurtureList.objects.order_by("name")
        self.fields["trigger_forms"].queryset = CaptureForm.objects.order_by("name")
        self.fields["timezone"].choices = timezone_choices()
        self.fields["timezone"].widget.attrs["class"] = "form-select"

    @staticmethod
    def initial_for(sequence) -> dict:
        triggers = sequence.entry_triggers or []
        window = sequence.send_window or {}
        return {
            "name": sequence.name,
            "is_active": sequence.is_active,
            "trigger_lists": [
                t.get("list_id") for t in triggers if t.get("type") == Trigger.JOINS_LIST
            ],
            "trigger_recycled": any(t.get("type") == Trigger.RECYCLED for t in triggers),
            "trigger_forms": [t.get("form_id") for t in triggers if t.get("type") == Trigger.FORM],
            "exit_on": list(sequence.exit_on or []),
            "window_enabled": bool(window),
            "window_days": window.get("days", [0, 1, 2, 3, 4]),
            "window_start": window.get("start", "09:00"),
            "window_end": window.get("end", "17:00"),
            "timezone": sequence.timezone,
            "from_name": sequence.from_name,
            "from_email": sequence.from_email,
        }

    def clean(self):
        data = super().clean()
        if data.get("window_enabled"):
            if not data.get("window_days"):
                self.add_error("window_days", "Choose at least one day to send on.")
            start, end = data.get("window_start"), data.get("window_end")
            if not start:
                self.add_error("window_start", "When does the window open?")
            if not end:
                self.add_error("window_end", "When does the window close?")
            if start and end and start >= end:
                self.add_error("window_end", "The window must close after it opens.")
        return data

    def to_data(self) -> dict:
        data = self.cleaned_data
        triggers = [
            {"type": Trigger.JOINS_LIST.value, "list_id": lst.pk} for lst in data["trigger_lists"]
        ]
        if data["trigger_recycled"]:
            triggers.append({"type": Trigger.RECYCLED.value})
        triggers += [{"type": Trigger.FORM.value, "form_id": f.pk} for f in data["trigger_forms"]]
        window = None
        if data["window_enabled"]:
            window = {
                "days": sorted(data["window_days"]),
                "start": data["window_start"].strftime("%H:%M"),
                "end": data["window_end"].strftime("%H:%M"),
            }
        return {
            "name": data["name"].strip(),
            "is_active": data["is_active"],
            "entry_triggers": triggers,
            "exit_on": list(data["exit_on"]),
            "send_window": window,
            "timezone": data["timezone"],
            "from_name": data["from_name"].strip(),
            "from_email": data["from_email"],
        }


class StepForm(NoHelperForm):
    delay_days = forms.IntegerField(label="Wait days", min_value=0, max_value=365, initial=0)
    delay_hours = forms.IntegerField(label="and hours", min_value=0, max_value=23, initial=0)
    template = forms.ModelChoiceField(
        queryset=EmailTemplate.objects.none(), empty_label="Choose a template…"
    )

    def __init__(self, *args, step=None, **kwargs):
        if step is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "delay_days": step.delay_days,
                "delay_hours": step.delay_hours,
                "template": step.template_id,
            }
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = EmailTemplate.objects.order_by("name")
        self.fields["template"].widget.attrs["class"] = "form-select"
        self.helper.layout = Layout(
            Row(
                Column(Field("delay_days"), css_class="col-sm-3"),
                Column(Field("delay_hours"), css_class="col-sm-3"),
                Column(Field("template"), css_class="col-sm-6"),
            )
        )

    def to_data(self) -> dict:
        return {k: self.cleaned_data[k] for k in ("delay_days", "delay_hours", "template")}


class EnrollForm(forms.Form):
    nurture_list = forms.ModelChoiceField(
        label="Enroll the members of",
        queryset=NurtureList.objects.none(),
        empty_label="Choose a list…",
        error_messages={"required": "Choose the list whose members to enroll."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["nurture_list"].queryset = NurtureList.objects.order_by("name")
        self.fields["nurture_list"].widget.attrs["class"] = "form-select"


# --- Sender identity -----------------------------------------------------------------


class SenderForm(forms.Form):
    from_name = forms.CharField(
        label="From-name",
        max_length=120,
        required=False,
        validators=[validate_single_line],
        help_text="The name recipients see, e.g. your company. Sequences may show their own.",
    )
    from_email = forms.EmailField(
        label="From-address",
        required=False,
        help_text="An address of your own domain. We email it a link: nothing is sent "
        "from it until that link is clicked. Changing it needs a new confirmation.",
    )
    reply_to = forms.EmailField(
        label="Reply-to", required=False, help_text="Where replies go (empty: the from-address)."
    )
    physical_address = forms.CharField(
        label="Postal address",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown in every email's footer; required before marketing email goes out "
        "(CAN-SPAM).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False

    def to_data(self) -> dict:
        return dict(self.cleaned_data)


class DirectEmailForm(forms.Form):
    """A rep's email to one lead: a subject and a plain-text body, both with merge fields."""

    subject = forms.CharField(max_length=300, widget=forms.TextInput(attrs={"autofocus": True}))
    body = forms.CharField(
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text="Plain text. Merge fields such as {{ first_name }} are filled in for the lead.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True

    def clean_subject(self):
        validate_single_line(self.cleaned_data["subject"])
        return self.cleaned_data["subject"]


class InboundAttachForm(forms.Form):
    email = forms.CharField(max_length=254, label="Lead's email address")
