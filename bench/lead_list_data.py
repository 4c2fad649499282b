"""Data for bench/lead_list.py: an organization's leads generated inside
PostgreSQL (INSERT … SELECT generate_series), with names as varied as real ones.

Lead i's values are hashes of i, so two runs build the same tenant. Surnames are
three syllables of SYLLABLES (8,000 of them), first names come from a list, the
email is first.last<i>@<one of 500 domains>, and 60% of leads belong to a
company (one per ten leads). Every SEARCH_EVERY-th lead is called SEARCH_NAME,
so the "search with matches" fills a page at every size and its count grows with
the tenant (100 matches at 10,000 leads, 10,000 at 1,000,000). PostgreSQL only.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from bench.rescore_data import _hash, _insert, _pick, add_activities, add_companies
from leads.models import Activity, Company, Lead

SYLLABLES = [
    "ka", "ri", "mo", "len", "sa", "to", "vi", "nor", "el", "an",
    "da", "ber", "ko", "lu", "min", "ra", "ste", "gu", "fa", "hol",
]  # fmt: skip
FIRST_NAMES = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus", "Radia", "Dennis",
    "Frances", "John", "Katherine", "Tim", "Hedy", "Guido", "Anita", "Bjarne", "Shafi", "Niklaus",
    "Sophie", "Yukihiro", "Jean", "Donald", "Annie", "Leslie", "Mary", "Vint", "Adele", "Robin",
    "Jürgen", "Zoë", "Łukasz", "Ángel", "Siobhán", "Søren", "Chloé", "Mateo", "Amara", "Ravi",
]  # fmt: skip
SEARCH_NAME = "Quenby"  # the "search with matches": a surname every SEARCH_EVERY-th lead has
SEARCH_EVERY = 100
NO_MATCH = "zzqxv"  # the "search without matches": no lead has it


def _surname() -> str:
    parts = [_pick(SYLLABLES, 40 + n) for n in range(3)]
    return (
        f"CASE WHEN i %% {SEARCH_EVERY} = 0 THEN '{SEARCH_NAME}'"
        f" ELSE initcap({parts[0]} || {parts[1]} || {parts[2]}) END"
    )


def add_leads(
    *,
    organization_id: int,
    start: int,
    count: int,
    companies: tuple[int, int],
    company_number: int,
    now: datetime,
) -> None:
    """Leads numbered start…; a company's number is company_number for the first id."""
    c_lo, c_hi = companies
    first, last = _pick(FIRST_NAMES, 1), _surname()
    company = f"CASE WHEN {_hash(6, 10)} < 6 THEN {c_lo} + {_hash(7, c_hi - c_lo + 1)} END"
    _insert(
        Lead,
        start,
        count,
        {
            "organization": "%(org)s",
            "first_name": first,
            "last_name": last,
            "email": f"lower({first} || '.' || {last}) || i || '@firm' || {_hash(8, 500)}"
            " || '.example'",
            "title": _pick(["VP Marketing", "Engineer", "Founder", "Analyst", ""], 3),
            "company": company,
            "company_name": f"CASE WHEN {company} IS NULL THEN '' ELSE 'Company ' ||"
            f" ({company} - {c_lo} + {company_number}) END",
            "country": _pick(["US", "DE", "GB", "FR", "IN", "BR"], 4),
            "first_source": _pick(["organic_search", "paid_search", "email", "referral"], 5),
            # Arrival order is not id order: a lead imported late may be old.
            "created_at": f"(%(now)s - make_interval(secs => {_hash(9, 700 * 86400)}))",
            "updated_at": "%(now)s",
            "score": _hash(10, 100),
            "grade": _pick(["A", "B", "C", "D"], 11),
            "band": _pick(["hot", "warm", "cold"], 12),
            "scored_at": "%(now)s",
        },
        {"org": organization_id, "now": now},
    )


def _count(model, organization_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM {model._meta.db_table} WHERE organization_id = %s",
            [organization_id],
        )
        return cursor.fetchone()[0]


def _max_id(model) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {model._meta.db_table}")
        return cursor.fetchone()[0]


def grow(*, organization_id: int, leads: int, activities_per_lead: int, now: datetime) -> None:
    """Add `leads` leads, a company per ten, and activities for the new leads.

    Numbering continues the organization's (lead i is the same lead in every run)."""
    start = _count(Lead, organization_id) + 1
    first_company, company_number = _max_id(Company) + 1, _count(Company, organization_id) + 1
    add_companies(
        organization_id=organization_id,
        start=company_number,
        count=max(leads // 10, 1),
        now=now,
    )
    companies = (first_company, _max_id(Company))  # one INSERT: consecutive ids
    first_lead = _max_id(Lead) + 1
    add_leads(
        organization_id=organization_id,
        start=start,
        count=leads,
        companies=companies,
        company_number=company_number,
        now=now,
    )
    if activities_per_lead:
        add_activities(
            organization_id=organization_id,
            start=_count(Activity, organization_id) + 1,
            count=leads * activities_per_lead,
            leads=(first_lead, _max_id(Lead)),
            now=now,
        )
