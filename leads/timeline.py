"""How an activity reads on the lead's timeline and in the rep's queue: the
kind's display name ("Demo request", not "Demorequest") and its properties as
labelled values — ids and bookkeeping are left out, never dumped raw."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leads.models import ActivityKind

# Property keys as people read them, in the order they are shown.
PROPERTY_LABELS: dict[str, str] = {
    "form": "Form",
    "title": "Title",
    "subject": "Subject",
    "note": "Note",
    "url": "Page",
    "referrer": "Referrer",
    "utm_source": "UTM source",
    "utm_medium": "UTM medium",
    "utm_campaign": "UTM campaign",
    "utm_term": "UTM term",
    "utm_content": "UTM content",
    "event": "Event",
    "value": "Value",
    "duration": "Duration",
    "duration_seconds": "Duration",
    "outcome": "Outcome",
    "channel": "Via",
    "consent_text": "Consent text",
}
# Internal references: they mean nothing on the page.
HIDDEN = frozenset(
    {
        "form_id",
        "submission_id",
        "message_id",
        "enrollment_id",
        "sequence_id",
        "step_id",
        "template_id",
        "link_id",
        "import_id",
        "job_id",
        "row",
        "external_id",
        "lead_id",
    }
)
MAX_VALUE = 160


def kind_label(kind: str | None) -> str:
    """The display name of an activity kind; an unknown one readably."""
    if kind in ActivityKind.values:
        return str(ActivityKind(kind).label)
    return (kind or "activity").replace("_", " ").capitalize()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items())
    text = str(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _slug(value: Any) -> str:
    """A stored choice value ("no_answer") as words ("No answer")."""
    return str(value).replace("_", " ").capitalize()


def _seconds(value: Any) -> str:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return _text(value)
    minutes, rest = divmod(seconds, 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min" + (f" {rest} s" if rest else "")


# How some values read (the rest as text).
FORMATS = {"duration_seconds": _seconds, "outcome": _slug}


def _is_reference(key: str, value: Any) -> bool:
    """A row's id (form_id, logged_by…): it means nothing on the page."""
    is_number = isinstance(value, int) and not isinstance(value, bool)
    return key in HIDDEN or (is_number and key.endswith(("_id", "_by")))


def activity_details(properties: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The properties worth showing, as (label, value): known keys by label in
    a fixed order, then any others by a readable form of their key."""
    properties = properties or {}
    shown = [
        (label, FORMATS.get(key, _text)(properties[key]))
        for key, label in PROPERTY_LABELS.items()
        if properties.get(key) not in (None, "", [], {})
    ]
    for key, value in properties.items():
        if key in PROPERTY_LABELS or _is_reference(key, value) or value in (None, "", [], {}):
            continue
        shown.append((str(key).replace("_", " ").capitalize(), _text(value)))
    return shown
