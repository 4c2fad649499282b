"""Turning one CSV record into the row dict the ingest engine takes.

Cell values are trimmed; form placeholders such as "Select" (the unanswered
default of a dropdown) count as empty; lead-source values are mapped to a
Channel; custom attributes that look like plain numbers become numbers so
scoring rules can compare them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leads.importing.mapping import (
    CUSTOM_PREFIX,
    FULL_NAME,
    IGNORE,
    OUTCOME,
    OUTCOME_DATE,
    SOURCE,
)
from leads.models import Channel

PLACEHOLDERS = frozenset(
    {"select", "-- select --", "--select--", "- select -", "please select", "select one"}
)
# Plain decimals only: "007" (a code) and "1,5" (ambiguous) stay text, and
# integers stay within what JSON consumers read exactly.
_NUMBER = re.compile(r"-?(?:0|[1-9]\d{0,14})(?:\.\d{1,12})?")
_WORDS = re.compile(r"[^a-z0-9]+")

_CHANNEL_VALUES: dict[str, str] = {
    **{c.value.replace("_", " "): c.value for c in Channel},
    **{c.label.lower(): c.value for c in Channel},
    "google": Channel.ORGANIC_SEARCH,
    "bing": Channel.ORGANIC_SEARCH,
    "yahoo": Channel.ORGANIC_SEARCH,
    "duckduckgo": Channel.ORGANIC_SEARCH,
    "organic": Channel.ORGANIC_SEARCH,
    "seo": Channel.ORGANIC_SEARCH,
    "search engine": Channel.ORGANIC_SEARCH,
    "pay per click ads": Channel.PAID_SEARCH,
    "pay per click": Channel.PAID_SEARCH,
    "ppc": Channel.PAID_SEARCH,
    "cpc": Channel.PAID_SEARCH,
    "sem": Channel.PAID_SEARCH,
    "adwords": Channel.PAID_SEARCH,
    "google ads": Channel.PAID_SEARCH,
    "facebook": Channel.SOCIAL,
    "linkedin": Channel.SOCIAL,
    "twitter": Channel.SOCIAL,
    "x": Channel.SOCIAL,
    "instagram": Channel.SOCIAL,
    "youtube": Channel.SOCIAL,
    "youtubechannel": Channel.SOCIAL,
    "tiktok": Channel.SOCIAL,
    "social media": Channel.SOCIAL,
    "facebook ads": Channel.PAID_SOCIAL,
    "linkedin ads": Channel.PAID_SOCIAL,
    "newsletter": Channel.EMAIL,
    "e mail": Channel.EMAIL,
    "edm": Channel.EMAIL,
    "nc edm": Channel.EMAIL,
    "email campaign": Channel.EMAIL,
    "trade show": Channel.EVENT,
    "tradeshow": Channel.EVENT,
    "conference": Channel.EVENT,
    "expo": Channel.EVENT,
    "reference": Channel.REFERRAL,
    "referral sites": Channel.REFERRAL,
    "referrer": Channel.REFERRAL,
    "word of mouth": Channel.REFERRAL,
    "recommendation": Channel.REFERRAL,
    "welingak website": Channel.REFERRAL,
    "welearn": Channel.REFERRAL,
    "affiliate": Channel.PARTNER,
    "reseller": Channel.PARTNER,
    # A chat or call started on the site: the visit itself was direct.
    "direct traffic": Channel.DIRECT,
    "olark chat": Channel.DIRECT,
    "live chat": Channel.DIRECT,
    "chat": Channel.DIRECT,
    "click2call": Channel.DIRECT,
    "inbound call": Channel.DIRECT,
    "walk in": Channel.DIRECT,
    "list purchase": Channel.PURCHASED_LIST,
    "bought list": Channel.PURCHASED_LIST,
    "data vendor": Channel.PURCHASED_LIST,
    "blog": Channel.CONTENT,
    "press release": Channel.CONTENT,
    "content": Channel.CONTENT,
}
# Tried in order on values that aren't known as a whole.
_CHANNEL_WORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("webinar",), Channel.WEBINAR),
    (("chat",), Channel.DIRECT),
    (("referr", "reference"), Channel.REFERRAL),
    (("partner", "affiliate"), Channel.PARTNER),
    (("email", "newsletter", "edm", "mailchimp"), Channel.EMAIL),
    (("event", "conference", "trade show", "expo", "meetup"), Channel.EVENT),
    (("blog", "press", "content", "whitepaper", "ebook"), Channel.CONTENT),
)
_SOCIAL = ("facebook", "linkedin", "twitter", "instagram", "youtube", "tiktok", "social")
_SEARCH = ("google", "bing", "yahoo", "search", "baidu")
_PAID = ("ads", "ppc", "cpc", "paid", "adwords", "sponsored")


def channel_for(value: str) -> str:
    """The Channel of a lead-source value; unknown values are `other`, empty is ''."""
    words = _WORDS.sub(" ", value.lower()).strip()
    if not words:
        return ""
    known = _CHANNEL_VALUES.get(words) or _CHANNEL_VALUES.get(words.replace(" ", ""))
    if known:
        return str(known)
    paid = any(w in words.split() for w in _PAID) or "paid" in words
    if any(w in words for w in _SOCIAL):
        return str(Channel.PAID_SOCIAL if paid else Channel.SOCIAL)
    if any(w in words for w in _SEARCH):
        return str(Channel.PAID_SEARCH if paid else Channel.ORGANIC_SEARCH)
    for needles, channel in _CHANNEL_WORDS:
        if any(n in words for n in needles):
            return str(channel)
    return str(Channel.OTHER)


_PLACEHOLDER_MAX = max(map(len, PLACEHOLDERS))
_NUMBER_START = frozenset("-0123456789")


def custom_value(value: str) -> Any:
    """'5' -> 5, '2.5' -> 2.5; anything else stays text."""
    if value[:1] in _NUMBER_START and _NUMBER.fullmatch(value):
        return float(value) if "." in value else int(value)
    return value


def clean_cell(value: str) -> str:
    """Trimmed; '' for placeholders. (Hot path: runs for every cell of a file.)"""
    value = value.strip()
    if len(value) <= _PLACEHOLDER_MAX and value.lower() in PLACEHOLDERS:
        return ""
    return value


def split_full_name(value: str) -> tuple[str, str]:
    """'Ana María López' -> ('Ana María', 'López'); one word is a first name."""
    parts = value.split()
    if len(parts) < 2:
        return value, ""
    return " ".join(parts[:-1]), parts[-1]


WON_VALUES = frozenset({"won", "converted", "1", "yes", "y", "true", "closed won", "customer"})
LOST_VALUES = frozenset(
    {"lost", "not converted", "0", "no", "n", "false", "closed lost", "disqualified"}
)


def outcome_value(value: str) -> str | None:
    """'Converted', '1', 'yes' -> 'won'; 'lost', '0', 'no' -> 'lost'; else None (open)."""
    words = " ".join(_WORDS.sub(" ", value.lower()).split())
    if words in WON_VALUES:
        return "won"
    if words in LOST_VALUES:
        return "lost"
    return None


def outcome_date(value: str) -> dt.datetime | None:
    """An ISO date or date-time (UTC when no zone is given); None when unreadable."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class RowPlan:
    """How to turn a record into an ingest row; built once per import."""

    fields: tuple[tuple[int, str], ...]  # (column index, lead field)
    custom: tuple[tuple[int, str], ...]  # (column index, custom key)
    source: int | None
    full_name: int | None
    opt_in_all: bool
    outcome: int | None = None
    outcome_date: int | None = None

    @classmethod
    def build(
        cls, header: list[str], mapping: Mapping[str, str], *, opt_in_all: bool = False
    ) -> RowPlan:
        fields, custom = [], []
        source = full_name = outcome = outcome_at = None
        for index, name in enumerate(header):
            target = mapping.get(name, IGNORE)
            if not target:
                continue
            if target.startswith(CUSTOM_PREFIX):
                custom.append((index, target.removeprefix(CUSTOM_PREFIX)))
            elif target == SOURCE:
                source = index
            elif target == FULL_NAME:
                full_name = index
            elif target == OUTCOME:
                outcome = index
            elif target == OUTCOME_DATE:
                outcome_at = index
            else:
                fields.append((index, target))
        return cls(tuple(fields), tuple(custom), source, full_name, opt_in_all, outcome, outcome_at)

    def outcome_of(self, values: list[str]) -> tuple[str, dt.datetime | None] | None:
        """The record's (won/lost, date or None), or None when it has no outcome."""
        if self.outcome is None:
            return None
        outcome = outcome_value(values[self.outcome])
        if outcome is None:
            return None
        at = outcome_date(values[self.outcome_date]) if self.outcome_date is not None else None
        return outcome, at

    def row(self, values: list[str]) -> dict[str, Any]:
        """The ingest row of one record (values as read, one per header column)."""
        row: dict[str, Any] = {}
        for index, name in self.fields:
            value = clean_cell(values[index])
            if value:
                row[name] = value
        if self.full_name is not None:
            first, last = split_full_name(clean_cell(values[self.full_name]))
            if first:
                row["first_name"] = first
            if last:
                row["last_name"] = last
        if self.source is not None:
            channel = channel_for(clean_cell(values[self.source]))
            if channel:
                row["source"] = channel
        custom = {}
        for index, key in self.custom:
            value = clean_cell(values[index])
            if value:
                custom[key] = custom_value(value)
        row["custom"] = custom
        if self.opt_in_all:
            row["email_opt_in"] = True
        return row
