"""Writes of the capture form builder: forms, their ordered fields, activation.

Rules enforced here (the builder forms show the same messages field by field):

- a field's key is a slug, unique within its form, and not one of the names the
  hosted page itself posts (consent checkbox, page URL, fill-time token);
- a lead field is filled by at most one field of a form; the field type must
  suit it (an email field for Email, a checkbox or hidden field for opt-ins);
- a select field needs its options;
- an active form has exactly one field mapped to Email, and it is required —
  so every accepted submission can become a lead. Activation checks it, and a
  change that would break an active form is refused.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from accounts.models import Organization
from leadflow.core.errors import LeadflowError
from leads.models import (
    CUSTOM,
    MAPPABLE_LEAD_FIELDS,
    CaptureForm,
    CaptureFormField,
    FieldType,
)

# Names the hosted page posts besides the admin's fields.
CONSENT_KEY = "consent"
PAGE_URL_KEY = "page_url"
TOKEN_KEY = "lf_token"
RESERVED_KEYS = frozenset({CONSENT_KEY, PAGE_URL_KEY, TOKEN_KEY, "csrfmiddlewaretoken"})

MAX_OPTIONS = 200
MAX_OPTION_LENGTH = 200
_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*\Z")

KEY_MAX_LENGTH = 60  # CaptureFormField.key
DEFAULT_MIN_FILL_SECONDS = 3  # a person takes longer; most bots post at once


def key_from_label(label: str, taken: Iterable[str] = ()) -> str:
    """A field key derived from its label ("Job title" -> "job_title"), unique
    among `taken` and never a reserved name ("job_title_2" when taken)."""
    text = (label or "").replace("ß", "ss")  # the one common letter NFKD keeps
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[: KEY_MAX_LENGTH - 4].strip("_")
    base = base or "field"
    used = {*taken, *RESERVED_KEYS}
    key, n = base, 1
    while key in used:
        n += 1
        key = f"{base}_{n}"
    return key


BOOLEAN_LEAD_FIELDS = frozenset({"email_opt_in", "do_not_email", "do_not_call"})
# Which field types may fill which lead field (anything may fill a custom attribute).
_TYPES_FOR_LEAD_FIELD: dict[str, frozenset[str]] = {
    "email": frozenset({FieldType.EMAIL}),
    "country": frozenset({FieldType.COUNTRY, FieldType.SELECT, FieldType.TEXT, FieldType.HIDDEN}),
    **{name: frozenset({FieldType.CHECKBOX, FieldType.HIDDEN}) for name in BOOLEAN_LEAD_FIELDS},
}
_TEXT_TYPES = frozenset(FieldType.values) - {FieldType.CHECKBOX}

# In the order the field editor shows them.
FIELD_ATTRS = (
    "label",
    "key",
    "field_type",
    "maps_to",
    "required",
    "options",
    "help_text",
    "default_value",
)
FORM_ATTRS = (
    "name",
    "default_campaign",
    "activity_kind",
    "submit_label",
    "success_message",
    "redirect_url",
    "consent_text",
    "double_opt_in",
    "is_active",
    "min_fill_seconds",
)

# A new form starts valid: an email field plus the name fields every form asks for.
STARTER_FIELDS = (
    {"key": "email", "label": "Work email", "field_type": FieldType.EMAIL, "maps_to": "email"},
    {"key": "first_name", "label": "First name", "maps_to": "first_name"},
    {"key": "last_name", "label": "Last name", "maps_to": "last_name"},
)


class HostedFormCache:
    """Per-process cache of hosted forms' definitions (the form and its fields).

    The public endpoint is the hot path, so it reads no form rows per request.
    A builder write drops its entry on commit in this process; other processes
    see the change within `ttl` seconds. Bounded: only existing forms are cached.
    """

    max_entries = 2000

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Any]] = {}

    def get(self, key: str, *, stale: bool = False) -> Any:
        """The cached definition; with stale=True also one past its ttl (the
        public endpoint's fallback while the database is unreachable)."""
        entry = self._entries.get(key)
        if entry is None or (entry[0] < time.monotonic() and not stale):
            return None
        return entry[1]

    def put(self, key: str, value: Any) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl, value)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)


hosted_forms = HostedFormCache(ttl=5.0)


def hosted_form_forget(*, form: CaptureForm) -> None:
    """Drop the cached definition once the builder's change is committed."""
    key = form.key
    transaction.on_commit(lambda: hosted_forms.forget(key))


class FormConfigError(LeadflowError):
    """A builder change that would leave a form misconfigured. `errors` maps the
    offending attribute (or None for the form as a whole) to a message."""

    def __init__(self, errors: Mapping[str | None, str]):
        self.errors = dict(errors)
        super().__init__(" ".join(self.errors.values()))


def allowed_types(maps_to: str) -> frozenset[str]:
    if maps_to == CUSTOM:
        return frozenset(FieldType.values)
    return _TYPES_FOR_LEAD_FIELD.get(maps_to, _TEXT_TYPES)


def clean_options(options: Iterable[Any]) -> list[str]:
    """Trim, drop blanks and duplicates, keep the admin's order."""
    seen: dict[str, None] = {}
    for option in options:
        text = str(option).strip()
        if text:
            seen.setdefault(text, None)
    return list(seen)


def field_problems(
    *, form: CaptureForm, values: Mapping[str, Any], instance: CaptureFormField | None = None
) -> dict[str | None, str]:
    """What is wrong with these field values on this form (attribute -> message;
    typed as FormConfigError's mapping, whose None is the form as a whole)."""
    problems: dict[str | None, str] = {}
    key = str(values.get("key") or "")
    field_type = values.get("field_type") or FieldType.TEXT
    maps_to = values.get("maps_to") or CUSTOM
    others = [f for f in form.fields.all() if instance is None or f.pk != instance.pk]

    if not _KEY_RE.match(key):
        problems["key"] = (
            "Use lower-case letters, digits, hyphens and underscores, starting with a letter "
            "or digit."
        )
    elif key in RESERVED_KEYS:
        problems["key"] = f"“{key}” is used by the hosted form itself; choose another key."
    elif any(f.key == key for f in others):
        problems["key"] = f"Another field of this form already uses the key “{key}”."

    if field_type not in FieldType.values:
        problems["field_type"] = "Choose a field type."
    if maps_to != CUSTOM and maps_to not in MAPPABLE_LEAD_FIELDS:
        problems["maps_to"] = "Choose a lead field or “Custom attribute”."
    elif maps_to != CUSTOM:
        taken = next((f for f in others if f.maps_to == maps_to), None)
        if taken is not None:
            problems["maps_to"] = (
                f"“{taken.label}” already fills {MAPPABLE_LEAD_FIELDS[maps_to]}; "
                "a lead field can be filled by one field only."
            )
        elif field_type in FieldType.values and field_type not in allowed_types(maps_to):
            names = ", ".join(sorted(FieldType(t).label for t in allowed_types(maps_to)))
            problems["field_type"] = (
                f"{MAPPABLE_LEAD_FIELDS[maps_to]} can only be filled by: {names}."
            )
        elif maps_to == "email" and not values.get("required"):
            problems["required"] = "The field mapped to Email must be required."

    options = values.get("options") or []
    if field_type == FieldType.SELECT:
        if not options:
            problems["options"] = "A select field needs at least one option (one per line)."
        elif len(options) > MAX_OPTIONS:
            problems["options"] = f"At most {MAX_OPTIONS} options."
        elif any(len(o) > MAX_OPTION_LENGTH for o in options):
            problems["options"] = f"Each option can be at most {MAX_OPTION_LENGTH} characters."
    return problems


def activation_problems(*, fields: Iterable[CaptureFormField]) -> list[str]:
    """Why a form with these fields can't take submissions (empty when it can)."""
    email_fields = [f for f in fields if f.maps_to == "email"]
    if not email_fields:
        return ["Add a field mapped to Email: every submission must carry an email address."]
    if len(email_fields) > 1:
        return ["Exactly one field may be mapped to Email."]
    if not email_fields[0].required:
        return [f"Make “{email_fields[0].label}” required: it is the lead's email address."]
    return []


def _normalized_field_values(values: Mapping[str, Any]) -> dict[str, Any]:
    data = {name: values[name] for name in FIELD_ATTRS if name in values}
    data["key"] = str(data.get("key") or "").strip()
    data["label"] = str(data.get("label") or "").strip()
    data["field_type"] = data.get("field_type") or FieldType.TEXT
    data["maps_to"] = data.get("maps_to") or CUSTOM
    data["required"] = bool(data.get("required"))
    is_select = data["field_type"] == FieldType.SELECT
    data["options"] = clean_options(data.get("options") or []) if is_select else []
    is_hidden = data["field_type"] == FieldType.HIDDEN
    data["default_value"] = str(data.get("default_value") or "").strip() if is_hidden else ""
    data["help_text"] = str(data.get("help_text") or "").strip()
    return data


def _locked(form: CaptureForm) -> CaptureForm:
    # Serialize builder writes per form, so two editors can't both take the key
    # or leave an active form without its email field.
    return CaptureForm.objects.select_for_update().get(pk=form.pk)


def _check_still_valid(form: CaptureForm, fields: list[CaptureFormField]) -> None:
    if form.is_active:
        problems = activation_problems(fields=fields)
        if problems:
            raise FormConfigError(
                {None: problems[0] + " Deactivate the form first to make this change."}
            )


@transaction.atomic
def capture_form_create(*, organization: Organization, **values: Any) -> CaptureForm:
    """Create a form with the starter fields (email, first and last name), so it
    can take submissions as soon as it is active."""
    data = {name: values[name] for name in FORM_ATTRS if name in values}
    if CaptureForm.objects.filter(name=data.get("name", "")).exists():
        raise FormConfigError({"name": "A form with this name already exists."})
    form = CaptureForm.objects.create(organization=organization, **data)
    CaptureFormField.objects.bulk_create(
        [
            CaptureFormField(
                organization=organization,
                form=form,
                position=position,
                required=spec["maps_to"] == "email",
                **spec,
            )
            for position, spec in enumerate(STARTER_FIELDS)
        ]
    )
    return form


@transaction.atomic
def capture_form_update(*, form: CaptureForm, **values: Any) -> CaptureForm:
    """Change a form's settings; activating it checks its fields first."""
    locked = _locked(form)
    data = {name: values[name] for name in FORM_ATTRS if name in values}
    name = data.get("name", locked.name)
    if CaptureForm.objects.filter(name=name).exclude(pk=locked.pk).exists():
        raise FormConfigError({"name": "A form with this name already exists."})
    for attr, value in data.items():
        setattr(locked, attr, value)
    if locked.is_active:
        problems = activation_problems(fields=locked.fields.all())
        if problems:
            raise FormConfigError({"is_active": problems[0]})
    try:
        with transaction.atomic():
            locked.save()
    except IntegrityError as exc:  # a concurrent rename took the name
        raise FormConfigError({"name": "A form with this name already exists."}) from exc
    hosted_form_forget(form=locked)
    return locked


def capture_form_set_active(*, form: CaptureForm, active: bool) -> CaptureForm:
    return capture_form_update(form=form, is_active=active)


@transaction.atomic
def form_field_create(*, form: CaptureForm, **values: Any) -> CaptureFormField:
    locked = _locked(form)
    data = _normalized_field_values(values)
    problems = field_problems(form=locked, values=data)
    if problems:
        raise FormConfigError(problems)
    position = (locked.fields.aggregate(m=Max("position"))["m"] or 0) + 1
    hosted_form_forget(form=locked)
    return CaptureFormField.objects.create(
        organization_id=locked.organization_id, form=locked, position=position, **data
    )


@transaction.atomic
def form_field_update(*, field: CaptureFormField, **values: Any) -> CaptureFormField:
    locked = _locked(field.form)
    data = _normalized_field_values({**{a: getattr(field, a) for a in FIELD_ATTRS}, **values})
    problems = field_problems(form=locked, values=data, instance=field)
    if problems:
        raise FormConfigError(problems)
    for attr, value in data.items():
        setattr(field, attr, value)
    _check_still_valid(locked, [field if f.pk == field.pk else f for f in locked.fields.all()])
    field.save()
    hosted_form_forget(form=locked)
    return field


@transaction.atomic
def form_field_delete(*, field: CaptureFormField) -> None:
    """Delete a field; past submissions keep the values it collected (raw payload)."""
    locked = _locked(field.form)
    _check_still_valid(locked, [f for f in locked.fields.all() if f.pk != field.pk])
    field.delete()
    hosted_form_forget(form=locked)


@transaction.atomic
def form_fields_reorder(*, form: CaptureForm, field_ids: list[int]) -> None:
    """Put the form's fields in this order; the list must name each field once."""
    locked = _locked(form)
    fields = {f.pk: f for f in locked.fields.all()}
    if sorted(field_ids) != sorted(fields):
        raise FormConfigError({None: "The form changed meanwhile; reload and try again."})
    for position, pk in enumerate(field_ids):
        fields[pk].position = position
    CaptureFormField.objects.bulk_update(list(fields.values()), ["position"])
    hosted_form_forget(form=locked)


def form_field_move(*, field: CaptureFormField, direction: str) -> None:
    """Move a field one place up or down (the no-JavaScript reorder)."""
    if direction not in ("up", "down"):
        raise FormConfigError({None: "Move a field up or down."})
    ids = list(CaptureFormField.objects.filter(form_id=field.form_id).values_list("pk", flat=True))
    index = ids.index(field.pk)
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(ids):
        ids[index], ids[other] = ids[other], ids[index]
    form_fields_reorder(form=field.form, field_ids=ids)
