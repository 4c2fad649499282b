"""Which column feeds which lead field: the choices, the suggestions drawn from
header names, and the rules a mapping must follow.

A mapping is a dict {column name: target}; a target is a lead field of
MAPPABLE_LEAD_FIELDS, `full_name` (split into first and last name), `source`
(the lead source/channel), `outcome` / `outcome_date` (a past lead's won/lost and
its date, recorded as stage history), `custom:<key>` (a custom attribute) or ""
(ignore).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

from leadflow.core.errors import LeadflowError
from leads.models import MAPPABLE_LEAD_FIELDS

IGNORE = ""
SOURCE = "source"
FULL_NAME = "full_name"
CUSTOM_PREFIX = "custom:"
# The known outcome of a past lead (won / lost) and its date: stage history, not a field.
OUTCOME = "outcome"
OUTCOME_DATE = "outcome_date"
IDENTITY_FIELDS = ("email", "external_id")
CUSTOM_KEY_MAX = 60

TARGET_LABELS: dict[str, str] = {
    **MAPPABLE_LEAD_FIELDS,
    FULL_NAME: "Full name (split into first and last)",
    SOURCE: "Lead source (channel)",
    OUTCOME: "Outcome (won / lost, 1 / 0, yes / no)",
    OUTCOME_DATE: "Outcome date",
}

# Header spellings, compared with everything but letters and digits removed
# ("E-mail Address" -> "emailaddress").
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "email": (
        "email",
        "emailaddress",
        "mail",
        "emailid",
        "workemail",
        "businessemail",
        "primaryemail",
        "contactemail",
        "courriel",
    ),
    "external_id": (
        "id",
        "prospectid",
        "leadid",
        "recordid",
        "contactid",
        "externalid",
        "crmid",
        "customerid",
        "personid",
        "uuid",
    ),
    "first_name": ("firstname", "givenname", "forename", "first", "fname", "vorname", "prenom"),
    "last_name": ("lastname", "surname", "familyname", "last", "lname", "nachname", "nom"),
    FULL_NAME: ("name", "fullname", "contactname", "leadname", "contact", "personname"),
    "title": ("jobtitle", "title", "position", "role", "jobrole", "designation", "job"),
    "phone": (
        "phone",
        "phonenumber",
        "telephone",
        "tel",
        "mobile",
        "mobilephone",
        "mobilenumber",
        "cell",
        "cellphone",
        "workphone",
        "businessphone",
        "contactnumber",
        "telefon",
        "telephonenumber",
    ),
    "company_name": (
        "company",
        "companyname",
        "organisation",
        "organization",
        "organisationname",
        "organizationname",
        "account",
        "accountname",
        "employer",
        "business",
        "firm",
        "firma",
        "unternehmen",
        "societe",
        "entreprise",
    ),
    "industry": ("industry", "sector", "vertical"),
    "company_size": (
        "companysize",
        "employees",
        "numberofemployees",
        "employeecount",
        "headcount",
        "noofemployees",
    ),
    "country": ("country", "countryname", "countryregion", "countrycode", "nation", "land", "pays"),
    "city": ("city", "town", "locality", "stadt", "ort", "ville"),
    "email_opt_in": (
        "optin",
        "emailoptin",
        "marketingoptin",
        "subscribed",
        "newsletter",
        "consent",
        "marketingconsent",
        "emailconsent",
        "acceptsmarketing",
        "gdprconsent",
    ),
    "do_not_email": ("donotemail", "emailoptout", "optout", "unsubscribed", "noemail"),
    "do_not_call": ("donotcall", "dnc", "nocall", "callingoptout"),
    SOURCE: (
        "leadsource",
        "source",
        "channel",
        "leadchannel",
        "marketingchannel",
        "originalsource",
    ),
}
_SUGGESTIONS: dict[str, str] = {
    spelling: target for target, spellings in _SYNONYMS.items() for spelling in spellings
}


class MappingError(LeadflowError):
    """The mapping can't be used (no identity column, a field mapped twice...)."""


def _compact(header: str) -> str:
    text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", text.lower())


def custom_key(header: str) -> str:
    """'TotalVisits' -> 'total_visits', 'Page Views Per Visit' -> 'page_views_per_visit'."""
    text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:CUSTOM_KEY_MAX].strip("_")


def custom_keys(header: list[str]) -> list[str]:
    """A distinct custom-attribute key for every column."""
    keys: list[str] = []
    used: set[str] = set()
    for position, name in enumerate(header, start=1):
        base = custom_key(name) or f"column_{position}"
        key, n = base, 1
        while key in used:
            n += 1
            key = f"{base[: CUSTOM_KEY_MAX - 4]}_{n}"
        used.add(key)
        keys.append(key)
    return keys


def target_choices(key: str) -> list[tuple[str, str]]:
    """The choices of one column's select; `key` is its custom-attribute key."""
    return [
        (IGNORE, "— Don't import —"),
        ("Lead fields", [(target, label) for target, label in TARGET_LABELS.items()]),
        (f"{CUSTOM_PREFIX}{key}", f"Custom attribute “{key}”"),
    ]


def suggest_mapping(header: list[str]) -> dict[str, str]:
    """Lead fields for the headers we recognise (each field once, first column
    wins); every other column becomes a custom attribute."""
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for name, key in zip(header, custom_keys(header), strict=True):
        target = _SUGGESTIONS.get(_compact(name))
        if target and target not in taken:
            taken.add(target)
            mapping[name] = target
        else:
            mapping[name] = f"{CUSTOM_PREFIX}{key}"
    if FULL_NAME in taken and taken & {"first_name", "last_name"}:
        # Separate name columns are better than splitting a full name.
        for name, target in mapping.items():
            if target == FULL_NAME:
                mapping[name] = f"{CUSTOM_PREFIX}{custom_keys(header)[header.index(name)]}"
    return mapping


def _is_valid_target(target: str, key: str) -> bool:
    return target in (IGNORE, *TARGET_LABELS) or target == f"{CUSTOM_PREFIX}{key}"


def validate_mapping(header: list[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """Return the mapping restricted to the header's columns, or raise MappingError."""
    keys = dict(zip(header, custom_keys(header), strict=True))
    clean = {name: str(mapping.get(name) or IGNORE) for name in header}
    problems: list[str] = []
    for name, target in clean.items():
        if not _is_valid_target(target, keys[name]):
            problems.append(f"“{name}” can't be imported as “{target}”.")
    used: dict[str, list[str]] = {}
    for name, target in clean.items():
        if target and not target.startswith(CUSTOM_PREFIX):
            used.setdefault(target, []).append(name)
    for target, names in used.items():
        if len(names) > 1:
            columns = " and ".join(f"“{n}”" for n in names)
            problems.append(f"{columns} are both mapped to {TARGET_LABELS[target]}; pick one.")
    if FULL_NAME in used and used.keys() & {"first_name", "last_name"}:
        problems.append("Map either a full-name column or first/last name columns, not both.")
    if not used.keys() & set(IDENTITY_FIELDS):
        problems.append(
            "Map a column to Email or to Record ID: without one, rows can't be matched to leads."
        )
    if problems:
        raise MappingError(" ".join(problems))
    return clean


def describe(mapping: Mapping[str, str]) -> Iterable[tuple[str, str]]:
    """(column, human label of its target) for the imported columns."""
    for name, target in mapping.items():
        if target.startswith(CUSTOM_PREFIX):
            yield name, f"Custom attribute “{target.removeprefix(CUSTOM_PREFIX)}”"
        elif target:
            yield name, TARGET_LABELS.get(target, target)
