"""The lead CSV export's columns: which exist, what each writes, the defaults.

A column is a lead field, a related name (owner, campaign) or a custom
attribute (`custom:<key>`, headed by its label). Every cell goes through
csvsafe.neutralize: formulas are quoted, phones and numbers stay importable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from leadflow.core.csvsafe import neutralize
from leads.models import Lead

CUSTOM_PREFIX = "custom:"


def _display(name: str) -> Callable[[Lead], Any]:
    return lambda lead: getattr(lead, f"get_{name}_display")() if getattr(lead, name) else ""


def _owner(lead: Lead) -> str:
    return lead.owner.user.email if lead.owner_id and lead.owner else ""


def _campaign(attr: str) -> Callable[[Lead], str]:
    return lambda lead: getattr(lead, attr).name if getattr(lead, f"{attr}_id") else ""


@dataclass(frozen=True)
class ExportColumn:
    key: str  # the header, as the importer maps it back
    label: str  # what the column chooser shows
    value: Callable[[Lead], Any]
    default: bool = True


def _field(key: str, label: str, attr: str | None = None, default: bool = True) -> ExportColumn:
    name = attr or key
    return ExportColumn(key, label, lambda lead: getattr(lead, name), default)


STANDARD_COLUMNS: tuple[ExportColumn, ...] = (
    _field("id", "ID", "pk"),
    _field("email", "Email"),
    _field("external_id", "Record ID"),
    _field("first_name", "First name"),
    _field("last_name", "Last name"),
    _field("title", "Job title"),
    _field("phone", "Phone"),
    _field("company", "Company", "company_name"),
    _field("industry", "Industry"),
    _field("company_size", "Company size"),
    _field("country", "Country"),
    _field("city", "City"),
    _field("first_source", "First source"),
    _field("latest_source", "Latest source"),
    ExportColumn("first_campaign", "First campaign", _campaign("first_campaign")),
    ExportColumn("latest_campaign", "Latest campaign", _campaign("latest_campaign"), False),
    _field("score", "Score"),
    _field("fit_score", "Fit score", default=False),
    _field("engagement_score", "Engagement score", default=False),
    _field("grade", "Grade"),
    ExportColumn("band", "Band", _display("band")),
    _field("mql_eligible", "MQL eligible", default=False),
    ExportColumn("stage", "Stage", _display("stage")),
    ExportColumn("owner", "Owner", _owner),
    _field("quality", "Quality"),
    _field("email_opt_in", "Email opt-in"),
    _field("do_not_email", "Do not email"),
    _field("do_not_call", "Do not call", default=False),
    _field("created_at", "Created"),
    _field("last_activity_at", "Last activity", default=False),
)
_BY_KEY = {c.key: c for c in STANDARD_COLUMNS}
DEFAULT_COLUMNS = [c.key for c in STANDARD_COLUMNS if c.default]


def _custom(key: str, label: str) -> ExportColumn:
    return ExportColumn(
        CUSTOM_PREFIX + key, label, lambda lead: (lead.custom or {}).get(key, ""), False
    )


def column_choices(custom_labels: dict[str, str]) -> list[tuple[str, str]]:
    """Every column the export can write: the lead's fields, then the
    organization's custom attributes by label."""
    choices = [(c.key, c.label) for c in STANDARD_COLUMNS]
    choices += [(CUSTOM_PREFIX + key, label) for key, label in custom_labels.items()]
    return choices


def resolve_columns(keys: Iterable[str], custom_labels: dict[str, str]) -> list[ExportColumn]:
    """The columns for these keys, in the order given; unknown keys are skipped
    (a custom attribute no form names any more is still exported by its key)."""
    columns = []
    for key in dict.fromkeys(keys):
        if key in _BY_KEY:
            columns.append(_BY_KEY[key])
        elif key.startswith(CUSTOM_PREFIX) and len(key) > len(CUSTOM_PREFIX):
            name = key[len(CUSTOM_PREFIX) :]
            columns.append(_custom(name, custom_labels.get(name, name)))
    return columns


def header(columns: list[ExportColumn]) -> list[str]:
    """Field columns by their key (the importer maps those back); custom
    attributes by their label (which the importer turns back into the key)."""
    return [
        neutralize(c.label if c.key.startswith(CUSTOM_PREFIX) else c.key, keep_numbers=False)
        for c in columns
    ]


def row(lead: Lead, columns: list[ExportColumn]) -> list[str]:
    return [neutralize(_cell(c.value(lead))) for c in columns]


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return value
