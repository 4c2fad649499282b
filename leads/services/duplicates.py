"""Possible duplicates at scale: blocking keys, stored candidate pairs.

Each live lead has up to three blocking keys (DuplicateKey): its phone in
E.164, its mailbox (local part without a plus tag @ domain family, so
zoe+news@googlemail.com is zoe@gmail.com) and its name with its company.
Leads that share a key are candidates; one indexed self-join finds them for a
batch of leads, rapidfuzz ranks them, and they are stored (DuplicateCandidate)
so the review page reads a table. A batch costs time linear in its size: its
keys, one join per chunk, one upsert.

Refreshed by the post-ingest hook (leads.tasks.duplicates enqueues a task for
the batch), by edits of key
fields, by merges and discards; `duplicates_rebuild` recomputes a tenant.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from rapidfuzz import fuzz

from accounts.models import Membership
from leadflow.core.errors import LeadflowError
from leads.models import (
    CandidateStatus,
    DuplicateCandidate,
    DuplicateKey,
    DuplicateKeyKind,
    Lead,
)

CHUNK = 1000  # leads per self-join (bound parameters stay far below SQLite's limit)
# A key shared by more leads than this is a switchboard number, a role mailbox
# or a buying committee, not one person: it is not compared.
BLOCK_LIMIT = 25

# Mail domains that are one mailbox system under several names.
DOMAIN_FAMILIES = {"googlemail.com": "gmail.com"}
# Providers that ignore dots in the local part.
DOTLESS_DOMAINS = frozenset({"gmail.com"})
COMPANY_SUFFIXES = frozenset(
    [
        "inc",
        "incorporated",
        "llc",
        "ltd",
        "limited",
        "gmbh",
        "ag",
        "sa",
        "sas",
        "bv",
        "nv",
        "plc",
        "co",
        "corp",
        "corporation",
        "company",
    ]
)
KEY_FIELDS = ("email", "phone", "country", "first_name", "last_name", "company_name")


class DuplicateError(LeadflowError):
    pass


# --- Blocking keys ------------------------------------------------------------------


_WORD = re.compile(r"[a-z0-9]+")


def _ascii_words(text: str) -> list[str]:
    text = text or ""
    if not text.isascii():  # fold accents (most names need no folding)
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    return _WORD.findall(text.lower())


def phone_key(phone: str, country: str = "") -> str:
    """E.164 for any way of writing a number (a national number needs the
    lead's country); '' when it isn't a possible number."""
    phone = (phone or "").strip()
    if not phone:
        return ""
    try:
        number = phonenumbers.parse(phone, (country or "").upper() or None)
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_possible_number(number) or len(str(number.national_number)) < 6:
        return ""  # too short to tell one person from another
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def email_key(email: str) -> str:
    """The mailbox: plus tag stripped, domain family applied (googlemail.com
    is gmail.com), dots ignored where the provider ignores them."""
    email = (email or "").strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        return ""
    local = local.split("+", 1)[0]
    domain = DOMAIN_FAMILIES.get(domain, domain)
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{domain}" if local else ""


def company_words(company_name: str) -> list[str]:
    return [w for w in _ascii_words(company_name) if w not in COMPANY_SUFFIXES]


def name_key(first_name: str, last_name: str, company_name: str) -> str:
    """Last name and first initial (accents folded) at the company (legal
    suffixes dropped), so Jon and John Smith at Initech Inc. are compared;
    '' without a last name or a company."""
    last = _ascii_words(last_name)
    first = _ascii_words(first_name)
    company = company_words(company_name)
    if not last or not company:
        return ""
    initial = first[0][0] if first else ""
    return f"{' '.join(last)}|{initial}|{' '.join(company)}"[:254]


def lead_keys(values: dict[str, Any]) -> dict[str, str]:
    keys = {
        DuplicateKeyKind.PHONE: phone_key(values["phone"], values["country"]),
        DuplicateKeyKind.EMAIL: email_key(values["email"]),
        DuplicateKeyKind.NAME: name_key(
            values["first_name"], values["last_name"], values["company_name"]
        ),
    }
    return {str(kind): value for kind, value in keys.items() if value}


# --- Ranking ------------------------------------------------------------------------

REASON_TEXT = {
    DuplicateKeyKind.PHONE: "Same phone",
    DuplicateKeyKind.EMAIL: "Same mailbox",
    DuplicateKeyKind.NAME: "Same name at the same company",
}


@dataclass
class Match:
    kinds: set[str] = field(default_factory=set)


def pair_score(a: dict[str, Any], b: dict[str, Any], kinds: Iterable[str]) -> tuple[int, list]:
    """0-100 from the shared keys and how alike names, mailboxes and companies
    are (rapidfuzz); and the reasons, as shown on the review page."""
    kinds = sorted(set(kinds))
    name_a = " ".join(_ascii_words(f"{a['first_name']} {a['last_name']}"))
    name_b = " ".join(_ascii_words(f"{b['first_name']} {b['last_name']}"))
    name = fuzz.token_sort_ratio(name_a, name_b) if name_a and name_b else 0.0
    local_a, local_b = (email_key(v["email"]).partition("@")[0] for v in (a, b))
    mailbox = fuzz.ratio(local_a, local_b) if local_a and local_b else 0.0
    comp_a, comp_b = (" ".join(company_words(v["company_name"])) for v in (a, b))
    company = fuzz.token_set_ratio(comp_a, comp_b) if comp_a and comp_b else 0.0
    score = 0.45 * name + 0.15 * mailbox + 0.1 * company + 15 * len(kinds)
    reasons = [REASON_TEXT[DuplicateKeyKind(kind)] for kind in kinds]
    if DuplicateKeyKind.NAME in kinds and name < 100:
        reasons[kinds.index(DuplicateKeyKind.NAME)] = "Similar name at the same company"
    if name >= 85 and DuplicateKeyKind.NAME not in kinds:
        reasons.append("Same name" if name == 100 else f"Names {round(name)}% alike")
    return min(100, round(score)), reasons


# --- Refresh ------------------------------------------------------------------------

_VALUES = ("pk", "merged_into_id", "discarded_at", "company__name", *KEY_FIELDS)


def _lead_values(lead_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    rows = {}
    for row in Lead.objects.filter(pk__in=lead_ids).values(*_VALUES):
        if not row["company_name"] and row["company__name"]:
            row["company_name"] = row["company__name"]  # the account's name stands in
        rows[row["pk"]] = row
    return rows


def _chunks(ids: Sequence[int], size: int = CHUNK) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _keys_refresh(organization_id: int, lead_ids: list[int]) -> dict[int, dict]:
    """Replace the keys of these leads (live ones get keys; merged or
    discarded ones lose theirs). Returns the leads' values by id."""
    rows = _lead_values(lead_ids)
    DuplicateKey.objects.filter(lead_id__in=lead_ids).delete()
    DuplicateKey.objects.bulk_create(
        [
            DuplicateKey(organization_id=organization_id, lead_id=pk, kind=kind, value=value)
            for pk, row in rows.items()
            if row["merged_into_id"] is None and row["discarded_at"] is None
            for kind, value in lead_keys(row).items()
        ],
        # Two refreshes of one lead may run at once (two captures of one person).
        update_conflicts=True,
        unique_fields=["organization", "lead", "kind"],
        update_fields=["value"],
    )
    return rows


def _shared_keys(organization_id: int, lead_ids: list[int]) -> dict[tuple[int, int], set[str]]:
    """(lower id, higher id) -> the key kinds they share, for pairs with a lead
    of the batch: one self-join on (organization, kind, value)."""
    table = DuplicateKey._meta.db_table
    marks = ", ".join(["%s"] * len(lead_ids))
    sql = f"""
        SELECT a.lead_id, b.lead_id, a.kind
        FROM {table} a
        JOIN {table} b
          ON b.organization_id = a.organization_id AND b.kind = a.kind
         AND b.value = a.value AND b.lead_id <> a.lead_id
        WHERE a.organization_id = %s AND a.lead_id IN ({marks})
          AND (SELECT COUNT(*) FROM (
                SELECT 1 FROM {table} c
                WHERE c.organization_id = a.organization_id AND c.kind = a.kind
                  AND c.value = a.value LIMIT {BLOCK_LIMIT + 1}) AS block) <= {BLOCK_LIMIT}
    """
    pairs: dict[tuple[int, int], set[str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [organization_id, *lead_ids])
        for one, other, kind in cursor.fetchall():
            pairs.setdefault((min(one, other), max(one, other)), set()).add(kind)
    return pairs


def _pairs_refresh(organization_id: int, batch: dict[int, dict]) -> int:
    """Find, rank and store the pairs of these leads; drop their open pairs
    that no longer share a key. Dismissed and merged pairs keep their status."""
    lead_ids = list(batch)
    shared = _shared_keys(organization_id, lead_ids)
    others = {pk for pair in shared for pk in pair} - set(batch)
    values = dict(batch)
    if others:
        values.update(_lead_values(others))
    now = timezone.now()
    found = []
    for (a, b), kinds in shared.items():
        score, reasons = pair_score(values[a], values[b], kinds)
        found.append(
            DuplicateCandidate(
                organization_id=organization_id,
                lead_a_id=a,
                lead_b_id=b,
                score=score,
                reasons=reasons,
                found_at=now,
            )
        )
    open_pairs = DuplicateCandidate.objects.filter(
        Q(lead_a_id__in=lead_ids) | Q(lead_b_id__in=lead_ids), status=CandidateStatus.OPEN
    ).values_list("pk", "lead_a_id", "lead_b_id")
    gone = [pk for pk, a, b in open_pairs if (a, b) not in shared]
    if gone:
        DuplicateCandidate.objects.filter(pk__in=gone).delete()
    DuplicateCandidate.objects.bulk_create(
        found,
        update_conflicts=True,
        unique_fields=["organization", "lead_a", "lead_b"],
        update_fields=["score", "reasons"],
    )
    return len(found)


@transaction.atomic
def duplicates_refresh(*, organization_id: int, lead_ids: Iterable[int]) -> int:
    """Recompute the keys and candidate pairs of these leads (time linear in
    their number). Returns how many pairs they are in."""
    ids = sorted(set(lead_ids))
    total = 0
    for chunk in _chunks(ids):
        batch = _keys_refresh(organization_id, chunk)
        total += _pairs_refresh(organization_id, batch)
    return total


def duplicates_rebuild(*, organization_id: int) -> int:
    """Every key of the tenant, then every pair: two passes, so a pair is
    found once both leads have keys, and decisions (dismissed) survive."""
    live = Lead.objects.filter(merged_into__isnull=True, discarded_at__isnull=True)
    ids = list(live.order_by("pk").values_list("pk", flat=True))
    with transaction.atomic():
        DuplicateKey.objects.exclude(lead_id__in=live.values("pk")).delete()
    batches = []
    for chunk in _chunks(ids):
        with transaction.atomic():
            batches.append(list(_keys_refresh(organization_id, chunk)))
    total = 0
    for chunk in batches:
        with transaction.atomic():
            total += _pairs_refresh(organization_id, _lead_values(chunk))
    return total


# The sweep: leads created within SWEEP_WINDOW (and not in the last
# SWEEP_GRACE, whose refresh may still be queued) that have no blocking key
# lost their refresh task (a broker outage, a killed worker).
SWEEP_WINDOW = timedelta(days=2)
SWEEP_GRACE = timedelta(minutes=2)
SWEEP_BATCH = 5000


def leads_missing_keys(*, now: datetime | None = None, limit: int = SWEEP_BATCH) -> list[int]:
    """Live leads with an email created in the sweep window that have no key
    (one query on the (organization, created_at) index and the key index)."""
    now = now or timezone.now()
    has_key = DuplicateKey.objects.filter(lead=OuterRef("pk"))
    missing = (
        Lead.objects.filter(
            created_at__gte=now - SWEEP_WINDOW,
            created_at__lt=now - SWEEP_GRACE,
            merged_into__isnull=True,
            discarded_at__isnull=True,
        )
        .exclude(email="")
        .filter(~Exists(has_key))
    )
    return list(missing.order_by("pk").values_list("pk", flat=True)[:limit])


def duplicates_sweep(*, organization_id: int) -> int:
    """Refresh the leads whose refresh task was lost; returns how many."""
    ids = leads_missing_keys()
    if ids:
        duplicates_refresh(organization_id=organization_id, lead_ids=ids)
    return len(ids)


def key_fields_changed(before: dict[str, Any], lead: Lead) -> bool:
    return any(before.get(name) != getattr(lead, name) for name in KEY_FIELDS)


@transaction.atomic
def duplicate_dismiss(*, candidate: DuplicateCandidate, actor: Membership) -> None:
    """Not one person: the pair leaves the list and is not proposed again."""
    DuplicateCandidate.objects.filter(pk=candidate.pk).update(
        status=CandidateStatus.DISMISSED, decided_at=timezone.now(), decided_by=actor.user
    )


def duplicates_close_merged(*, kept_id: int, dropped_id: int, actor: Membership) -> None:
    """After a merge: the pair is merged; the dropped lead's other pairs go."""
    a, b = min(kept_id, dropped_id), max(kept_id, dropped_id)
    DuplicateCandidate.objects.filter(lead_a_id=a, lead_b_id=b).update(
        status=CandidateStatus.MERGED, decided_at=timezone.now(), decided_by=actor.user
    )
