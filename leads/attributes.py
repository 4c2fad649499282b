"""Custom attributes by their label: a lead's `custom` holds keys, and the
capture forms that collect them name them for people."""

from __future__ import annotations

from typing import Any

from leads.models import CUSTOM, CaptureFormField


def custom_attribute_labels() -> dict[str, str]:
    """The active organization's custom attributes, key -> label, as its capture
    forms name them (the newest form field's label wins), ordered by label."""
    labels: dict[str, str] = {}
    rows = CaptureFormField.objects.filter(maps_to=CUSTOM).order_by("pk")
    for key, label in rows.values_list("key", "label"):
        labels[key] = label or key
    return dict(sorted(labels.items(), key=lambda item: item[1].lower()))


def labelled_custom(custom: dict[str, Any] | None, labels: dict[str, str]) -> list[tuple[str, Any]]:
    """A lead's custom attributes as (label, value) pairs, labelled ones first
    in label order, then the rest (an import's columns) by key."""
    custom = custom or {}
    known = [(labels[k], custom[k]) for k in labels if k in custom]
    rest = sorted((k, v) for k, v in custom.items() if k not in labels)
    return known + rest
