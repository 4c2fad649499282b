"""The one ingest engine: scrub, dedupe/merge and record touchpoints for a batch
of incoming lead rows — a hosted-form submission (a batch of one), an API call
or a CSV import chunk all come through `lead_ingest_batch`.

Set-based: whatever the batch size, a batch costs a constant number of SQL
statements (look up companies, look up leads, insert new leads, update merged
ones, insert activities). A batch of one new identity (a form, an API call) is
inserted unless its email or record id is taken (ON CONFLICT DO NOTHING): no
lookup and no savepoint; a taken one merges the usual way. Rules enforced here:

- a lead is identified by its normalized email, or — for list/CRM imports with
  no email — by the sender's record id (external_id); both unique per
  organization (database constraints). A concurrent insert of the same identity
  makes the batch retry, and the retry merges into the row the other writer created;
- merging: the newest non-empty value wins per field, custom attributes are
  merged key by key, consent is only ever added (an unticked box is not a
  withdrawal) and do-not-email/-call stick;
- junk and suspect rows still become leads, quarantined with their reasons for
  the "Needs review" list; only rows with no usable email are refused (invalid),
  and rows of an erased person (their email's suppression hash is stored) are
  refused as invalid with the reason "suppressed";
- every row that gives email consent appends a "given" row to the consent ledger.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Field, Q
from django.utils import timezone

from leadflow.core import hooks
from leadflow.core.db import bulk_update_from_values
from leadflow.core.inserts import insert_fields, insert_row, insert_statement, mark_inserted
from leadflow.core.orgfacts import org_facts_prefetched
from leadflow.core.server_prepared import fill_placeholders, preparing_cursor, server_prepared
from leads.models import (
    Activity,
    Campaign,
    Company,
    ConsentAction,
    FormSubmission,
    Lead,
    Quality,
    SubmissionOutcome,
)
from leads.scrub import scrub_lead
from leads.services.consent import (
    SUPPRESSED_REASON,
    ConsentEntry,
    consent_record_batch,
    consent_source_of,
    record_key,
    suppressed_emails,
)

# Lead fields an incoming row may set (the keys of MAPPABLE_LEAD_FIELDS).
TEXT_FIELDS = (
    "first_name",
    "last_name",
    "title",
    "phone",
    "company_name",
    "industry",
    "country",
    "city",
)
BOOL_FIELDS = ("email_opt_in", "do_not_email", "do_not_call")
_SEVERITY_ORDER: dict[str, int] = {Quality.OK: 0, Quality.SUSPECT: 1, Quality.JUNK: 2}
_TRUE = {"1", "true", "yes", "y", "on", "x", "opt-in", "opted in", "subscribed"}
_INT_RE = re.compile(r"\d[\d,.\s]*")

MAX_ATTEMPTS = 3
_UNUSABLE_EMAIL = {"email_invalid", "email_missing"}


class Outcome:
    CREATED = "created"
    MERGED = "merged"
    JUNK = "junk"
    INVALID = "invalid"


@dataclass(frozen=True)
class Touch:
    """How the rows of a batch arrived: source, campaign, the activity to record."""

    source: str = ""
    campaign: Campaign | None = None
    activity_kind: str | None = None
    activity_properties: Mapping[str, Any] = field(default_factory=dict)
    consent_origin: str = ""
    # For the consent ledger: the text the person saw and their IP's digest.
    consent_text: str = ""
    consent_ip_hash: str = ""
    default_region: str | None = None
    # Further activities of the same touch (e.g. the page view that led to a
    # form submission), recorded with the first in one INSERT, before scoring.
    also: tuple[ExtraActivity, ...] = ()
    # The stored raw submission of a batch of one (an API call): when its row
    # creates a lead, the statement that inserts the lead (PostgreSQL) also
    # inserts its activities and records the submission's outcome, reasons,
    # lead, processed_at and attempt, and RowResult.outcome_recorded says so.
    submission: FormSubmission | None = None


@dataclass(frozen=True)
class ExtraActivity:
    kind: str
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class RowResult:
    index: int
    outcome: str
    lead_id: int | None = None
    email: str = ""
    reasons: list[dict] = field(default_factory=list)
    # The lead as written here (its score columns are the scorer's, not read
    # back); None when a hook changed its row too (read it again).
    lead: Lead | None = None
    # Touch.submission's outcome was recorded with the new lead (see Touch).
    outcome_recorded: bool = False


@dataclass(frozen=True)
class IngestedTouch:
    """What the write that runs the post-ingest hooks recorded, so a hook can
    tell that it has nothing to do without a query: the kinds of the new
    activities and the capture forms they came from."""

    activity_kinds: frozenset[str]
    form_ids: frozenset[int]
    # Leads whose rows a hook changed beyond their scores (an MQL crossing
    # routes them): RowResult.lead is read again for those.
    changed: set[int] = field(default_factory=set)
    # New leads their INSERT also scored (hooks.new_lead_scores): the
    # scorer's result columns, by lead id.
    scored_at_insert: dict[int, tuple] = field(default_factory=dict)


_current_touch: ContextVar[IngestedTouch | None] = ContextVar("ingested_touch", default=None)


def ingested_touch() -> IngestedTouch | None:
    """Inside a post-ingest hook: what the running write recorded (None when
    unknown — the hook must then assume anything)."""
    return _current_touch.get()


def note_leads_changed(lead_ids: Iterable[int]) -> None:
    """Called by a hook that changes lead rows (stage, owner) during an ingest."""
    touched = _current_touch.get()
    if touched is not None:
        touched.changed.update(lead_ids)


@contextmanager
def touch_context(touched: IngestedTouch) -> Iterator[IngestedTouch]:
    token = _current_touch.set(touched)
    try:
        yield touched
    finally:
        _current_touch.reset(token)


def run_post_ingest_hooks(
    organization_id: int, lead_ids: list[int], touched: IngestedTouch
) -> IngestedTouch:
    """Run the hooks with `touched` available to them (ingested_touch)."""
    with touch_context(touched):
        hooks.post_ingest.call(organization_id, lead_ids)
    return touched


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in _TRUE


def parse_int(value: Any) -> int | None:
    """'1,000' -> 1000, '51-200' -> 51 (lower bound of a size band), junk -> None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 2**31 else None  # what the integer column stores
    match = _INT_RE.search(str(value))
    if not match:
        return None
    digits = re.sub(r"[,.\s]", "", match.group(0).split(".")[0])
    try:
        number = int(digits)
    except ValueError:
        return None
    return number if number < 2**31 else None


def _max_length(name: str) -> int | None:
    field = Lead._meta.get_field(name)
    assert isinstance(field, Field)  # TEXT_FIELDS are the lead's own columns, no relations
    return field.max_length


def _worst(qualities: Iterable[str]) -> str:
    return max(qualities, key=lambda q: _SEVERITY_ORDER[q], default=Quality.OK)


@dataclass
class _Prepared:
    index: int
    email: str
    external_id: str | None
    values: dict[str, Any]
    custom: dict[str, Any]
    reasons: list[dict]
    corrections: dict[str, Any]
    company_domain: str | None
    occurred_at: datetime
    properties: dict[str, Any]
    source: str = ""  # a per-row channel (e.g. an import's "Lead Source" column)


def _prepare(index: int, row: Mapping[str, Any], touch: Touch, now: datetime):
    result = scrub_lead(row, default_region=touch.default_region)
    reasons = result.reasons_as_dicts()
    codes = {r["code"] for r in reasons}
    email = "" if codes & _UNUSABLE_EMAIL else (result.cleaned.get("email") or "")
    external_id = str(row.get("external_id") or "").strip()[:200] or None
    corrections = dict(result.corrections)
    if "email_invalid" in codes and row.get("email"):
        corrections["email"] = str(row["email"])[:254]  # kept for the reviewer
    if not email and not external_id:
        return RowResult(index=index, outcome=Outcome.INVALID, reasons=reasons)
    if not email:
        # Identified by its record id: a missing email is a gap, not junk.
        reasons = [r for r in reasons if r["code"] != "email_missing"]
    values: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = result.cleaned.get(name)
        if value:
            values[name] = str(value)[: _max_length(name)]
    size = parse_int(row.get("company_size"))
    if size is not None:
        values["company_size"] = size
    for name in BOOL_FIELDS:
        if name in row and parse_bool(row[name]):
            values[name] = True
    custom = dict(row.get("custom") or {})
    occurred_at = row.get("occurred_at") or now
    return _Prepared(
        index=index,
        email=email,
        external_id=external_id,
        values=values,
        custom=custom,
        reasons=reasons,
        corrections=corrections,
        company_domain=None if result.is_free_mail else result.company_domain,
        occurred_at=occurred_at,
        properties=dict(row.get("properties") or {}),
        source=str(row.get("source") or ""),
    )


def identity(row: _Prepared) -> str:
    return row.email or f"id:{row.external_id}"


def _combine(rows: list[_Prepared]) -> dict[str, _Prepared]:
    """Collapse rows with the same identity inside one batch (later rows win)."""
    by_key: dict[str, _Prepared] = {}
    for row in rows:
        first = by_key.get(identity(row))
        if first is None:
            by_key[identity(row)] = _Prepared(
                **{
                    **row.__dict__,
                    "values": dict(row.values),
                    "custom": dict(row.custom),
                    "corrections": dict(row.corrections),
                    "reasons": list(row.reasons),
                }
            )
            continue
        first.external_id = row.external_id or first.external_id
        first.values.update(row.values)
        first.custom.update(row.custom)
        first.corrections.update(row.corrections)
        first.reasons = _merge_reasons(first.reasons, row.reasons, row_fields(row))
        first.company_domain = row.company_domain or first.company_domain
        first.source = row.source or first.source
        first.occurred_at = max(first.occurred_at, row.occurred_at)
    return by_key


def row_fields(row: _Prepared) -> set[str]:
    return {"email", *row.values}


def _merge_reasons(old: list[dict], new: list[dict], provided: set[str]) -> list[dict]:
    """Reasons about fields the new data re-supplied are replaced by the new verdict."""
    kept = [r for r in old if r.get("field") not in provided]
    return kept + [r for r in new if r not in kept]


def _companies_by_domain(organization_id: int, rows: Iterable[_Prepared]) -> dict[str, Company]:
    wanted: dict[str, _Prepared] = {}
    for row in rows:
        if row.company_domain:
            wanted.setdefault(row.company_domain, row)
    if not wanted:
        return {}
    if connection.vendor == "postgresql":
        found = _companies_upsert(organization_id, wanted)
        if len(found) == len(wanted):
            return found
        # A concurrent writer's company (committed after this statement began):
        # the lookup below finds it.
        wanted = {d: r for d, r in wanted.items() if d not in found}
    else:
        found = {}
    found.update(_by_domain(Company.objects.filter(domain__in=list(wanted))))
    missing = [d for d in wanted if d not in found]
    if missing:
        Company.objects.bulk_create(
            [
                Company(
                    organization_id=organization_id,
                    domain=d,
                    name=wanted[d].values.get("company_name", ""),
                    industry=wanted[d].values.get("industry", ""),
                    country=wanted[d].values.get("country", ""),
                )
                for d in missing
            ],
            ignore_conflicts=True,  # a concurrent writer may have created it
        )
        found.update(_by_domain(Company.objects.filter(domain__in=missing)))
    return found


_COMPANY_FIELDS = [
    "id", "organization_id", "name", "domain", "industry", "employee_count",
    "annual_revenue", "country", "created_at",
]  # fmt: skip
_COMPANY_COLUMNS = ", ".join(_COMPANY_FIELDS)
# After the CTEs of _companies_upsert_ctes: the companies of the wanted domains.
_COMPANIES_FOUND = (
    f"SELECT {_COMPANY_COLUMNS} FROM old UNION ALL SELECT {_COMPANY_COLUMNS} FROM new"
)


def _companies_upsert_ctes(
    organization_id: int, wanted: dict[str, _Prepared]
) -> tuple[str, list[Any]]:
    """The CTEs `old` (these domains' companies, from the snapshot) and `new`
    (the missing ones, inserted), and their parameters."""
    values = ", ".join(["(%s, %s, %s, %s)"] * len(wanted))
    params: list[Any] = []
    for domain, row in wanted.items():
        params += [
            domain,
            row.values.get("company_name", ""),
            row.values.get("industry", ""),
            row.values.get("country", ""),
        ]
    sql = (
        f"w (domain, name, industry, country) AS (VALUES {values}),"
        " old AS (SELECT c.* FROM leads_company c JOIN w ON c.domain = w.domain"
        " WHERE c.organization_id = %s),"
        " new AS (INSERT INTO leads_company (organization_id, name, domain, industry,"
        " country, created_at) SELECT %s, w.name, w.domain, w.industry, w.country, %s FROM w"
        " WHERE w.domain NOT IN (SELECT domain FROM old) ON CONFLICT DO NOTHING"
        f" RETURNING {_COMPANY_COLUMNS})"
    )
    # The organization is filtered by hand: this is the scope's own filter.
    return sql, [*params, organization_id, organization_id, timezone.now()]


def _companies_upsert(organization_id: int, wanted: dict[str, _Prepared]) -> dict[str, Company]:
    """PostgreSQL: the companies of these domains, the missing ones created, in
    one statement (existing rows from the snapshot, new ones from the INSERT)."""
    ctes, params = _companies_upsert_ctes(organization_id, wanted)
    return _by_domain(Company.objects.raw(f"WITH {ctes} {_COMPANIES_FOUND}", params))


def _by_domain(companies: Iterable[Company]) -> dict[str, Company]:
    # Every caller selects by domain, so none is None; the check tells mypy.
    return {c.domain: c for c in companies if c.domain is not None}


class _SqlFragment(str):
    """A value of `_with_values_written_in` that is SQL, written in as is."""


_COMPANY_OF_THE_STATEMENT = _SqlFragment("(SELECT id FROM c)")
# A new lead's activities, as the statement that inserts the lead writes them.
_ACTIVITY_FIELDS = [f for f in insert_fields(Activity) if f.attname != "lead_id"]
_ACTIVITY_COLUMNS = ", ".join(f'"{f.column}"' for f in _ACTIVITY_FIELDS)


def _insert_with_touch(
    organization_id: int, lead: Lead, row: _Prepared, activities: list[Activity], touch: Touch, now
) -> tuple[bool, Company | None, tuple | None]:
    """PostgreSQL: `insert_unless_taken` of a new lead, with the upsert of its
    company (as `_companies_upsert`), its activities and the outcome of
    touch.submission, in one statement of data-modifying CTEs (the activities
    and the outcome are written only when the lead is). When a scorer answers
    hooks.new_lead_scores, the lead is inserted scored (written once, not
    inserted and then updated). Returns whether the lead was inserted, its
    company (None also when a concurrent writer's new company was not visible
    to the statement: the caller looks it up) and the scorer's result columns
    (None without a scorer)."""
    scorer = next((s for s in hooks.new_lead_scores.call(organization_id, now) if s), None)
    _sql, lead_params = insert_statement(lead, ignore_conflicts=True)
    fields = insert_fields(Lead)
    if len(fields) != len(lead_params):
        raise ValueError("The lead's INSERT has a value that is not a plain parameter")
    ctes: list[str] = []
    params: list[Any] = []
    if row.company_domain:
        company_ctes, params = _companies_upsert_ctes(organization_id, {row.company_domain: row})
        ctes.append(f"{company_ctes}, c AS ({_COMPANIES_FOUND})")
        lead_params[[f.attname for f in fields].index("company_id")] = _COMPANY_OF_THE_STATEMENT
    activity_values = [
        [f.get_db_prep_save(f.pre_save(activity, True), connection) for f in _ACTIVITY_FIELDS]
        for activity in activities
    ]
    if scorer is None:
        ctes.append(f"l AS ({_sql})")
        params += lead_params
        for n, values in enumerate(activity_values):
            ctes.append(
                f"a{n} AS (INSERT INTO leads_activity ({_ACTIVITY_COLUMNS}, lead_id)"
                f" SELECT {', '.join(['%s'] * len(values))}, l.id FROM l)"
            )
            params += values
    else:
        unborn, unborn_params = _unborn_ctes(lead_params, activity_values)
        ctes += [unborn, scorer.ctes]
        params += [*unborn_params, *scorer.params]
        qn = connection.ops.quote_name
        columns = [qn(f.column) for f in fields]
        chosen = [scorer.columns.get(f.column, f"nl.{qn(f.column)}") for f in fields]
        ctes.append(
            f"l AS (INSERT INTO leads_lead (id, {', '.join(columns)})"
            f" SELECT nl.id, {', '.join(chosen)} FROM nl {scorer.joins}"
            " ON CONFLICT DO NOTHING RETURNING id)"
        )
        if activities:
            ctes.append(
                f"a AS (INSERT INTO leads_activity ({_ACTIVITY_COLUMNS}, lead_id)"
                f" SELECT {_ACTIVITY_COLUMNS}, l.id FROM na CROSS JOIN l)"
            )
    submission = touch.submission
    if submission is not None:
        reasons = FormSubmission._meta.get_field("outcome_reasons")
        ctes.append(
            "s AS (UPDATE leads_formsubmission SET outcome = %s, outcome_reasons = %s,"
            " lead_id = l.id, processed_at = %s, attempts = leads_formsubmission.attempts + 1"
            " FROM l WHERE leads_formsubmission.id = %s)"
        )
        outcome = _submission_outcome(lead)
        params += [
            outcome,
            reasons.get_db_prep_save(lead.quality_reasons, connection),
            now,
            submission.pk,
        ]
    if scorer is not None and scorer.after:
        ctes.append(scorer.after)
        params += scorer.after_params
    selected = ["l.id"]
    if row.company_domain:
        selected += [f"c.{name}" for name in _COMPANY_FIELDS]
    if scorer is not None:
        selected.append(scorer.result)
    joined = " LEFT JOIN c ON true" if row.company_domain else ""
    parts = [f"WITH {', '.join(ctes)} SELECT {', '.join(selected)} FROM l{joined}"]
    found = _run_written_or_prepared("".join(parts), params)
    if not mark_inserted(lead, found):
        return False, None, None
    assert found is not None  # a row came back: the lead was inserted
    company = None
    company_row = found[1 : 1 + len(_COMPANY_FIELDS)] if row.company_domain else ()
    if company_row and company_row[0] is not None:
        company = Company.from_db(connection.alias, _COMPANY_FIELDS, company_row)
        lead.company = company
    scored = found[1 + len(company_row) :] if scorer is not None else None
    for activity in activities:
        activity.lead = lead
        activity._state.adding = False
    if submission is not None:
        submission.outcome = outcome
        submission.outcome_reasons = lead.quality_reasons
        submission.lead_id = lead.pk
        submission.processed_at = now
        submission.attempts += 1
    return True, company, scored


def _unborn_ctes(lead_params: list, activity_values: list[list]) -> tuple[str, list]:
    """The CTEs a scorer reads the lead about to be inserted from: nid (its
    id, drawn from the table's sequence), nl (its row, every column, typed as
    the table's) and na (its activities, their lead_id the new id)."""
    sql = _unborn_text(len(activity_values))
    return sql, [*lead_params, *(v for values in activity_values for v in values)]


_VARCHAR_LENGTH = re.compile(r"^varchar\(\d+\)$")


@cache
def _unborn_text(activities: int) -> str:
    qn = connection.ops.quote_name

    def typed(field, value: str = "%s") -> str:
        # varchar without its length: a cast would cut a long value short,
        # where the INSERT's assignment refuses it, as Django's own INSERT does.
        sql_type = _VARCHAR_LENGTH.sub("varchar", field.db_type(connection))
        return f"{value}::{sql_type} AS {qn(field.column)}"

    lead_row = ", ".join(typed(f) for f in insert_fields(Lead))
    if activities:
        activity_row = ", ".join(typed(f) for f in _ACTIVITY_FIELDS)
        rows = " UNION ALL ".join(
            [f"SELECT {activity_row}, nid.id AS lead_id, 0::bigint AS id FROM nid"] * activities
        )
    else:
        nulls = ", ".join(typed(f, "NULL") for f in _ACTIVITY_FIELDS)
        rows = f"SELECT {nulls}, NULL::bigint AS lead_id, NULL::bigint AS id WHERE false"
    return (
        "nid AS (SELECT nextval(pg_get_serial_sequence('leads_lead', 'id')) AS id),"
        f" nl AS (SELECT nid.id AS id, {lead_row} FROM nid), na AS ({rows})"
    )


def _run_written_or_prepared(sql: str, params: list) -> tuple | None:
    """Run the statement (%s placeholders, %% a percent sign), its first row.
    Its text is the same for every lead of a shape (company or not, how many
    activities, a submission or not), so where it may
    (leadflow.core.server_prepared) it is prepared on the server, which then
    plans it once per connection. Else its values are written in: with over 50
    values psycopg would parse the text again on every call (it caches
    statements up to 50 parameters); written in, it is not parsed."""
    if server_prepared():
        values = [v for v in params if not isinstance(v, _SqlFragment)]
        text = fill_placeholders(
            sql, params, lambda v: v if isinstance(v, _SqlFragment) else "%s", "%%"
        )
        with preparing_cursor() as cursor:
            cursor.execute(text, values)
            return cursor.fetchone()
    with connection.cursor() as cursor:
        cursor.execute(_with_values_written_in(sql, params))
        return cursor.fetchone()


def _with_values_written_in(sql: str, params: list) -> str:
    """PostgreSQL: the statement with each %s replaced by its value as psycopg
    quotes a literal (and %% by %), to run with no parameters."""
    from psycopg.adapt import Transformer

    literal = Transformer(connection.connection).as_literal

    def written(value: Any) -> str:
        if isinstance(value, _SqlFragment):
            return value
        return "NULL" if value is None else literal(value).decode()

    return fill_placeholders(sql, params, written, "%")


def _submission_outcome(lead: Lead) -> str:
    junk = lead.quality == Quality.JUNK
    return SubmissionOutcome.JUNK if junk else SubmissionOutcome.CREATED


def _apply_touch(lead: Lead, row: _Prepared, touch: Touch, is_new: bool) -> None:
    at = row.occurred_at
    source = row.source or touch.source
    if is_new or lead.first_touch_at is None:
        lead.first_source = source
        lead.first_campaign = touch.campaign
        lead.first_touch_at = at
    if lead.latest_touch_at is None or at >= lead.latest_touch_at:
        lead.latest_source = source or lead.latest_source
        lead.latest_campaign = touch.campaign or lead.latest_campaign
        lead.latest_touch_at = at
    if touch.activity_kind and (lead.last_activity_at is None or at > lead.last_activity_at):
        lead.last_activity_at = at
    if row.values.get("email_opt_in") and not lead.email_opt_in:
        lead.email_opt_in = True
        lead.email_opt_in_at = at
        lead.email_opt_in_origin = touch.consent_origin[:200]


def _build_new(organization_id: int, row: _Prepared, company: Company | None, touch: Touch):
    lead = Lead(
        organization_id=organization_id,
        email=row.email,
        external_id=row.external_id,
        custom=row.custom,
        quality=_worst(r["severity"] for r in row.reasons),
        quality_reasons=row.reasons,
        corrections=row.corrections,
        company=company,
        **{k: v for k, v in row.values.items() if k != "email_opt_in"},
    )
    _apply_touch(lead, row, touch, is_new=True)
    return lead


MERGE_FIELDS = [
    "email",
    "external_id",
    *TEXT_FIELDS,
    "company_size",
    "do_not_email",
    "do_not_call",
    "email_opt_in",
    "email_opt_in_at",
    "email_opt_in_origin",
    "custom",
    "quality",
    "quality_reasons",
    "corrections",
    "company",
    "latest_source",
    "latest_campaign",
    "latest_touch_at",
    "first_source",
    "first_campaign",
    "first_touch_at",
    "last_activity_at",
    "updated_at",
]
# Fields whose change by a later submission or import is a lead.updated event
# (the person's data; not the touch, quality or bookkeeping columns).
WATCHED_FIELDS = tuple(MERGE_FIELDS[: MERGE_FIELDS.index("custom") + 1])


def _merge_into(lead: Lead, row: _Prepared, company: Company | None, touch: Touch, now) -> None:
    """Newest non-empty value wins; booleans only ever switch on."""
    for name, value in row.values.items():
        if name in BOOL_FIELDS:
            if name != "email_opt_in":
                setattr(lead, name, getattr(lead, name) or value)
        else:
            setattr(lead, name, value)
    lead.custom = {**(lead.custom or {}), **row.custom}
    lead.corrections = {**(lead.corrections or {}), **row.corrections}
    lead.quality_reasons = _merge_reasons(lead.quality_reasons or [], row.reasons, row_fields(row))
    lead.quality = _worst(r["severity"] for r in lead.quality_reasons)
    if company is not None and lead.company_id is None:
        lead.company = company
    lead.updated_at = now
    _apply_touch(lead, row, touch, is_new=False)


def _outcome(lead: Lead, is_new: bool) -> str:
    if lead.quality == Quality.JUNK:
        return Outcome.JUNK
    return Outcome.CREATED if is_new else Outcome.MERGED


def _existing(rows: dict[str, _Prepared]) -> tuple[dict[str, Lead], dict[str, Lead]]:
    emails = [r.email for r in rows.values() if r.email]
    ext_ids = [r.external_id for r in rows.values() if r.external_id]
    match = Q(email__in=emails) | Q(external_id__in=ext_ids)
    found = {lead.pk: lead for lead in Lead.objects.select_for_update().filter(match)}
    # A lead merged by hand lives on as an alias: new data goes to the lead it was merged into.
    missing_targets = {
        lead.merged_into_id for lead in found.values() if lead.merged_into_id
    } - found.keys()
    if missing_targets:
        found.update(
            {t.pk: t for t in Lead.objects.select_for_update().filter(pk__in=missing_targets)}
        )
    by_email: dict[str, Lead] = {}
    by_ext: dict[str, Lead] = {}
    for lead in found.values():
        target = found.get(lead.merged_into_id, lead) if lead.merged_into_id else lead
        if lead.email:
            by_email[lead.email] = target
        if lead.external_id:
            by_ext[lead.external_id] = target
    return by_email, by_ext


def _write_new_one(
    organization_id: int, prepared: list[_Prepared], rows: dict[str, _Prepared], touch: Touch, now
):
    """A batch of one identity, tried as a new lead: INSERT unless the email or
    record id is taken (then None: the caller merges the usual way). Returns
    {identity: lead}, the created identities, and whether the activities and
    the submission's outcome were written with the lead (PostgreSQL: with its
    company's upsert too); and the companies by domain when known (else None)."""
    [(key, row)] = rows.items()
    if connection.vendor != "postgresql":
        companies = _companies_by_domain(organization_id, rows.values())
        company = companies.get(row.company_domain) if row.company_domain else None
        lead = _build_new(organization_id, row, company, touch)
        if not insert_row(lead, ignore_conflicts=True):
            return None, companies
        return ({key: lead}, {key}, False, {}), companies
    lead = _build_new(organization_id, row, None, touch)
    activities = _activities(organization_id, prepared, {key: lead}, touch)
    inserted, company, scored = _insert_with_touch(
        organization_id, lead, row, activities, touch, now
    )
    if not inserted:
        return None, None  # the company is upserted: the merge finds it
    if row.company_domain and company is None:
        # Created by a concurrent writer after the statement's snapshot began.
        company = _companies_by_domain(organization_id, rows.values()).get(row.company_domain)
        if company is not None:
            Lead.objects.filter(pk=lead.pk).update(company=company)
            lead.company = company
    return ({key: lead}, {key}, True, {lead.pk: scored} if scored else {}), None


def _write_batch(
    organization_id: int, rows: dict[str, _Prepared], touch: Touch, now, companies=None
):
    """Returns {identity: lead} and the set of identities that created a lead."""
    if companies is None:
        companies = _companies_by_domain(organization_id, rows.values())
    by_email, by_ext = _existing(rows)
    new_leads: list[Lead] = []
    merged: dict[int, Lead] = {}  # by pk: two rows may resolve to one lead
    before: dict[int, dict[str, Any]] = {}  # the merged leads' values as they were
    leads: dict[str, Lead] = {}
    created: set[str] = set()
    for key, row in rows.items():
        company = companies.get(row.company_domain) if row.company_domain else None
        lead = by_email.get(row.email) if row.email else None
        lead = lead or (by_ext.get(row.external_id) if row.external_id else None)
        if lead is None:
            lead = _build_new(organization_id, row, company, touch)
            new_leads.append(lead)
            created.add(key)
        else:
            before.setdefault(lead.pk, {f: getattr(lead, f) for f in WATCHED_FIELDS})
            if row.email and not lead.email:
                lead.email = row.email  # found by record id; now we know the email
            if row.external_id and not lead.external_id and row.external_id not in by_ext:
                lead.external_id = row.external_id
            _merge_into(lead, row, company, touch, now)
            merged[lead.pk] = lead
        leads[key] = lead
    if new_leads:
        Lead.objects.bulk_create(new_leads)  # IntegrityError on a concurrent insert
    if merged:
        bulk_update_from_values(list(merged.values()), MERGE_FIELDS)
    updated = {}
    for pk, lead in merged.items():
        changes = {f: [v, getattr(lead, f)] for f, v in before[pk].items() if v != getattr(lead, f)}
        if changes:
            updated[pk] = changes
    return leads, created, updated


def _activities(organization_id: int, prepared, leads_by_key, touch: Touch) -> list[Activity]:
    if not touch.activity_kind:
        return []
    kinds = [(touch.activity_kind, touch.activity_properties)]
    kinds += [(extra.kind, extra.properties) for extra in touch.also]
    return [
        Activity(
            organization_id=organization_id,
            lead=leads_by_key[identity(row)],
            kind=kind,
            occurred_at=row.occurred_at,
            campaign=touch.campaign,
            properties={**properties, **row.properties},
        )
        for row in prepared
        for kind, properties in kinds
    ]


def _record_activities(organization_id: int, prepared, leads_by_key, touch: Touch) -> None:
    activities = _activities(organization_id, prepared, leads_by_key, touch)
    if activities:
        Activity.objects.bulk_create(activities)


def _touched(touch: Touch, scored: dict[int, tuple]) -> IngestedTouch:
    kinds = [touch.activity_kind, *(extra.kind for extra in touch.also)]
    forms = [touch.activity_properties.get("form_id")]
    forms += [extra.properties.get("form_id") for extra in touch.also]
    return IngestedTouch(
        activity_kinds=frozenset(k for k in kinds if k),
        form_ids=frozenset(int(f) for f in forms if f is not None),
        scored_at_insert=scored,
    )


def _record_consents(organization_id: int, prepared, leads_by_key, touch: Touch) -> None:
    given = [row for row in prepared if row.values.get("email_opt_in") and row.email]
    if not given:
        return
    text = touch.consent_text
    basis = touch.activity_properties.get("consent_basis")
    if not text and basis:
        text = f"Consent basis declared at import: {basis}"
    consent_record_batch(
        organization_id=organization_id,
        entries=[
            ConsentEntry(
                lead_id=leads_by_key[identity(row)].pk,
                email=row.email,
                text=text,
                occurred_at=row.occurred_at,
            )
            for row in given
        ],
        action=ConsentAction.GIVEN,
        source=consent_source_of(touch.consent_origin),
        ip_hash=touch.consent_ip_hash,
        detail=touch.consent_origin,
    )


def _finish(
    organization_id: int,
    prepared,
    leads,
    touch: Touch,
    created=(),
    updated=None,
    activities_written: bool = False,
    scored: dict[int, tuple] | None = None,
) -> set[int]:
    """After the leads are written: their activities (unless written with the
    lead) and consents, then the post-ingest hooks, then lead_created for the
    new ones and lead_updated for existing ones whose fields changed. Returns
    the ids of leads the hooks changed."""
    if not activities_written:
        _record_activities(organization_id, prepared, leads, touch)
    _record_consents(organization_id, prepared, leads, touch)
    lead_ids = sorted({lead.pk for lead in leads.values()})
    touched = _touched(touch, scored or {})
    changed = run_post_ingest_hooks(organization_id, lead_ids, touched).changed
    new_ids = sorted({leads[key].pk for key in created})
    if new_ids:
        hooks.lead_created.call(organization_id, new_ids)
    if updated:
        hooks.lead_updated.call(organization_id, updated)
    return changed


def _write_and_finish(organization_id: int, prepared: list[_Prepared], touch: Touch, now):
    """Returns {identity: lead}, the created identities, the ids of leads the
    hooks changed, and whether Touch.submission's outcome was recorded."""
    combined = _combine(prepared)
    companies = None
    if len(combined) == 1:
        # One identity (a form, an API call): tried as a new lead first, without
        # a savepoint — a taken email or record id is no error to recover from.
        with transaction.atomic(savepoint=False):
            written, companies = _write_new_one(organization_id, prepared, combined, touch, now)
            if written is not None:
                leads, created, together, scored = written
                changed = _finish(
                    organization_id,
                    prepared,
                    leads,
                    touch=touch,
                    created=created,
                    activities_written=together,
                    scored=scored,
                )
                return leads, created, changed, together and touch.submission is not None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                leads, created, updated = _write_batch(
                    organization_id, combined, touch, now, companies=companies
                )
                finished = _finish(
                    organization_id, prepared, leads, touch=touch, created=created, updated=updated
                )
                return leads, created, finished, False
        except IntegrityError:
            # Another writer inserted one of these emails first; the retry
            # finds it and merges. Fresh copies: the failed attempt mutated them.
            if attempt == MAX_ATTEMPTS:
                raise
            combined = _combine(prepared)
    raise AssertionError("unreachable")


def lead_ingest_batch(
    *, organization_id: int, rows: Sequence[Mapping[str, Any]], touch: Touch
) -> list[RowResult]:
    """Scrub, dedupe/merge and record a touch for each row; one transaction.

    Returns one RowResult per input row, in order. Call it inside the
    organization's scope.
    """
    with org_facts_prefetched(organization_id):  # one cache round trip for the facts
        return _ingest(organization_id, rows, touch)


def _ingest(
    organization_id: int, rows: Sequence[Mapping[str, Any]], touch: Touch
) -> list[RowResult]:
    now = timezone.now()
    results: list[RowResult | None] = [None] * len(rows)
    prepared: list[_Prepared] = []
    for index, raw in enumerate(rows):
        item = _prepare(index, raw, touch, now)
        if isinstance(item, RowResult):
            results[index] = item
        else:
            prepared.append(item)
    # An erased person: by their email, or (email-less CRM rows) by their record id.
    keys = {row.email for row in prepared} | {
        record_key(row.external_id) for row in prepared if row.external_id
    }
    suppressed = suppressed_emails(organization_id=organization_id, emails=keys)
    if suppressed:
        gone = [
            row
            for row in prepared
            if row.email in suppressed
            or (row.external_id and record_key(row.external_id) in suppressed)
        ]
        for row in gone:
            reasons = [SUPPRESSED_REASON]
            results[row.index] = RowResult(row.index, Outcome.INVALID, reasons=reasons)
        prepared = [row for row in prepared if row not in gone]
    if prepared:
        leads, created, changed, recorded = _write_and_finish(organization_id, prepared, touch, now)
        # The first row of a new identity created the lead; later rows merged into it.
        for row in prepared:
            key = identity(row)
            lead = leads[key]
            is_new = key in created
            created.discard(key)
            results[row.index] = RowResult(
                index=row.index,
                outcome=_outcome(lead, is_new),
                lead_id=lead.pk,
                email=row.email,
                reasons=row.reasons,
                lead=None if lead.pk in changed else lead,
                outcome_recorded=recorded,
            )
    return [r for r in results if r is not None]
