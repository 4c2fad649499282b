"""Features that scoring rules can express, streamed from SQL.

Every feature is a rule condition the engine evaluates the same way: a fit
field equal to one value (rare values pooled into one "is one of" list), a
number at least a quantile edge, a field that is empty, or at least k
activities of a kind within a window. Activities are counted point in time:
for a lead that sales took over (SAL or later, or an outcome), only those
before that moment, with the windows ending there. Values are read through the very
expressions the engine compiles (lower-cased text, custom attributes as text
or as numbers), so a feature holds for a lead exactly when its rule matches.

Rows are streamed with `values_list(...).iterator()` and stored column by
column in compact arrays (a code per text value, a float per number), never as
ORM objects.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Case, F, IntegerField, Min, Q, TextField, Value, When
from django.db.models.functions import Coalesce, Lower

from leads.models import Activity, ActivityKind, Lead, LeadStage
from scoring import fields as F_
from scoring.models import Operator, RuleKind

# Lead fields worth learning from (names, emails and the like identify, not predict).
LEAD_FIELDS = (
    "title", "industry", "company_size", "country", "city", "first_source",
    "latest_source", "quality", "email_opt_in", "company.industry",
    "company.employee_count", "company.annual_revenue", "company.country",
)  # fmt: skip
# Never engagement signals: calls, meetings and notes are only logged by a rep
# (pipeline's lead touch, or a CRM sync of the same) — they are sales contact
# itself, and which leads get them is the reps' choice, so even before SAL they
# would teach the reps' judgement back to the score; imports are the system's.
# A rep's own email and the lead's reply to it are the same sales contact.
# (Nurture's opens and clicks are marketing's, and count up to the moment
# sales took the lead over.)
SALES_ACTIVITY_KINDS = (
    ActivityKind.CALL,
    ActivityKind.MEETING,
    ActivityKind.NOTE,
    ActivityKind.IMPORT,
    ActivityKind.EMAIL_SENT,
    ActivityKind.EMAIL_REPLIED,
)
WINDOWS = (7, 30, 90, None)  # days; None = any age
MAX_CATEGORIES = 40  # per field, most frequent first
MAX_TEXT = 500  # the rule value limit
QUANTILES = np.linspace(0.05, 0.95, 19)  # every 5 %: chosen by cross-validation
CHUNK = 10_000
WON, LOST, OPEN = 1, 0, -1
REACHED_SALES = (LeadStage.SAL, LeadStage.SQL, LeadStage.OPPORTUNITY, LeadStage.WON, LeadStage.LOST)
# Stages at which sales has taken the lead over (or its outcome is known).
TAKEN_OVER = (*REACHED_SALES, LeadStage.DISQUALIFIED)


@dataclass(frozen=True)
class Feature:
    """One rule condition; `points` come later from the model."""

    kind: str
    field: str
    operator: str
    value: Any = None
    activity_kinds: tuple[str, ...] = ()
    min_count: int = 1
    window_days: int | None = None

    def rule(self, points: int, name: str) -> dict:
        return {
            "name": name[:200], "kind": self.kind, "field": self.field,
            "operator": self.operator, "value": self.value,
            "activity_kinds": list(self.activity_kinds), "min_count": self.min_count,
            "window_days": self.window_days, "points": int(points),
        }  # fmt: skip


@dataclass
class Column:
    """One fit field over every streamed lead."""

    field: str
    codes: array = field(default_factory=lambda: array("i"))  # text value code; 0 = empty
    texts: dict[str, int] = field(default_factory=lambda: {"": 0})
    numbers: array | None = None  # NaN = no number
    numeric: bool = False

    def text_of(self) -> list[str]:
        out = [""] * len(self.texts)
        for text, code in self.texts.items():
            out[code] = text
        return out


@dataclass
class Dataset:
    lead_ids: np.ndarray
    created: np.ndarray  # epoch seconds
    outcome: np.ndarray  # WON / LOST / OPEN
    reached_sales: np.ndarray  # bool: the lead got to SAL or later
    columns: dict[str, Column]
    activity: dict[tuple[str, int | None], np.ndarray]  # (kind, window) -> counts
    bands: list[str]
    mql: np.ndarray
    scores: np.ndarray  # the stored (current) total score
    # kind -> per-lead count of activities logged after sales took the lead over
    activity_after: dict[str, np.ndarray] = field(default_factory=dict)


def custom_keys() -> list[str]:
    """The custom attribute keys in use by the active organization's leads."""
    sql, params = Lead.objects.values("pk", "custom").query.sql_with_params()
    if connection.vendor == "postgresql":
        query = f"SELECT DISTINCT k FROM ({sql}) l, jsonb_object_keys(l.custom) k"
    else:
        query = f"SELECT DISTINCT j.key FROM ({sql}) l, json_each(l.custom) j"
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        keys = sorted(str(k) for (k,) in cursor.fetchall())
    return [k for k in keys if F_.CUSTOM_KEY.match(k)]


def _text(field_name: str):
    spec = F_.field_spec(field_name)
    expr = (
        F_.CustomText(field_name.removeprefix("custom."), "custom")
        if spec.kind == "custom"
        else F(spec.path)
    )
    return Lower(Coalesce(expr, Value(""), output_field=TextField()))


def _number(field_name: str):
    spec = F_.field_spec(field_name)
    if spec.kind == "custom":
        return F_.JsonNumber(field_name.removeprefix("custom."))
    return F(spec.path)


def candidate_fields(excluded: set[str]) -> list[str]:
    fields = [f for f in LEAD_FIELDS if f not in excluded]
    return fields + [f"custom.{k}" for k in custom_keys() if f"custom.{k}" not in excluded]


def stream(
    *,
    fields: list[str],
    now: datetime,
    progress: Callable[[str, int], None] | None = None,
    window_days: int | None = None,
) -> Dataset:
    """Read every live lead of the active organization: outcome, fit values and
    activity counts, in compact arrays. With `window_days`, a lead still open
    that long after it arrived counts as not converted."""
    expired = (
        [When(created_at__lt=now - timedelta(days=window_days), then=Value(LOST))]
        if window_days
        else []
    )
    ann: dict[str, Any] = {
        "y": Case(
            When(stage=LeadStage.WON, then=Value(WON)),
            When(stage__in=[LeadStage.LOST, LeadStage.DISQUALIFIED], then=Value(LOST)),
            *expired,
            default=Value(OPEN),
            output_field=IntegerField(),
        )
    }
    kinds: dict[str, str] = {}
    for i, name in enumerate(fields):
        spec = F_.field_spec(name)
        if spec.kind in (F_.NUMBER, "custom"):
            ann[f"n{i}"] = _number(name)
        if spec.kind == F_.BOOL:
            ann[f"t{i}"] = Case(
                When(**{spec.path: True}, then=Value("true")), default=Value("false")
            )
        elif spec.kind != F_.NUMBER:
            ann[f"t{i}"] = _text(name)
        kinds[name] = spec.kind
    columns = {
        name: Column(name, numbers=array("d") if f"n{i}" in ann else None)
        for i, name in enumerate(fields)
    }
    keys = list(ann)
    leads = (
        Lead.objects.filter(discarded_at__isnull=True, merged_into__isnull=True)
        .annotate(**ann)
        .order_by("pk")
        .values_list("pk", "created_at", "stage", "band", "mql_eligible", "score", *keys)
    )
    ids, created, outcome, sales = array("q"), array("d"), array("b"), array("b")
    bands, mql, scores = [], array("b"), array("q")
    slots = [(k, columns[fields[int(k[1:])]]) for k in keys[1:]]
    nan = math.nan
    for n, row in enumerate(leads.iterator(chunk_size=CHUNK)):
        ids.append(row[0])
        created.append(row[1].timestamp())
        sales.append(row[2] in REACHED_SALES)
        bands.append(row[3])
        mql.append(bool(row[4]))
        scores.append(row[5] or 0)
        outcome.append(row[6])
        for (key, column), value in zip(slots, row[7:], strict=True):
            if key[0] == "t":
                text = str(value) if value is not None else ""
                code = column.texts.get(text)
                if code is None:
                    code = column.texts[text] = len(column.texts)
                column.codes.append(code)
            else:
                column.numbers.append(nan if value is None else float(value))
        if progress and n and n % (CHUNK * 5) == 0:
            progress(f"Read {n:,} leads", 10)
    total = len(ids)
    for column in columns.values():
        if not column.codes:  # a number-only field: empty means no number
            column.codes = array("i", (0 if math.isnan(x) else 1 for x in column.numbers))
            column.texts = {"": 0, "(number)": 1}
    lead_ids = np.frombuffer(ids, dtype=np.int64) if total else np.zeros(0, np.int64)
    activity, activity_after = _activity_counts(lead_ids, now)
    return Dataset(
        lead_ids=lead_ids,
        created=np.asarray(created),
        outcome=np.asarray(outcome, dtype=np.int8),
        reached_sales=np.asarray(sales, dtype=bool),
        columns=columns,
        activity=activity,
        activity_after=activity_after,
        bands=bands,
        mql=np.asarray(mql, dtype=bool),
        scores=np.asarray(scores, dtype=np.int64),
    )


def _sales_takeover_sql() -> tuple[str, list]:
    """(sql, params) of `id, cut`: for every lead now at SAL or later or at an
    outcome, the moment sales took it over — its first move to such a stage in
    the stage history, else (no history kept) when it reached its stage.

    The history is the pipeline's StageTransition rows, read through the
    `transitions` relation they hang on Lead, so scoring never imports pipeline."""
    stages = list(TAKEN_OVER)
    cut: Any = F("stage_changed_at")
    if any(r.name == "transitions" for r in Lead._meta.related_objects):
        first = Min("transitions__occurred_at", filter=Q(transitions__to_stage__in=stages))
        cut = Coalesce(first, cut)
    leads = Lead.objects.filter(stage__in=stages).order_by().values("pk").annotate(cut=cut)
    return leads.query.sql_with_params()


def _epoch(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})"
    return f"((julianday({column}) - 2440587.5) * 86400.0)"


def _activity_counts(lead_ids: np.ndarray, now: datetime) -> tuple[dict, dict]:
    """Counts of each marketing activity kind per lead over each window, point
    in time: a lead that sales took over counts only what it did before (its
    windows end there), since what followed was worked by sales and would
    teach the outcome from the outcome. Also, per kind, the count after the
    takeover (for the leakage check). One aggregate query."""
    kinds = [k for k in ActivityKind.values if k not in SALES_ACTIVITY_KINDS]
    present = set(
        Activity.objects.filter(kind__in=kinds).order_by().values_list("kind", flat=True).distinct()
    )
    present_kinds = [k for k in kinds if k in present]
    pairs = [(k, w) for k in present_kinds for w in WINDOWS]
    if not pairs or not len(lead_ids):
        return {}, {}
    activities, a_params = (
        Activity.objects.filter(kind__in=present_kinds)
        .order_by()
        .values("lead_id", "kind", "occurred_at")
        .query.sql_with_params()
    )
    takeover, t_params = _sales_takeover_sql()
    before = "(taken = 0 OR ref > at)"
    sums, s_params = [], []
    for kind, window in pairs:
        span = " AND ref - at <= %s" if window else ""
        sums.append(f"SUM(CASE WHEN kind = %s AND {before}{span} THEN 1 ELSE 0 END)")
        s_params += [kind, window * 86400] if window else [kind]
    for kind in present_kinds:
        sums.append(f"SUM(CASE WHEN kind = %s AND NOT {before} THEN 1 ELSE 0 END)")
        s_params.append(kind)
    # ref: the lead's takeover (or now), at: the activity, both in epoch seconds.
    sql = (
        f"SELECT lead_id, {', '.join(sums)} FROM ("
        f" SELECT a.lead_id, a.kind, {_epoch('a.occurred_at')} AS at,"
        f" COALESCE({_epoch('t.cut')}, %s) AS ref,"
        f" CASE WHEN t.cut IS NULL THEN 0 ELSE 1 END AS taken"
        f" FROM ({activities}) a LEFT JOIN ({takeover}) t ON t.pk = a.lead_id"
        f") x GROUP BY lead_id"
    )
    params = [*s_params, now.timestamp(), *a_params, *t_params]
    counts = {pair: np.zeros(len(lead_ids), dtype=np.int32) for pair in pairs}
    after = {kind: np.zeros(len(lead_ids), dtype=np.int32) for kind in present_kinds}
    targets = [*counts.values(), *after.values()]
    index = {int(pk): i for i, pk in enumerate(lead_ids)}
    # A server-side cursor on PostgreSQL (as the ORM's iterator()): rows stream in chunks.
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK):
            for row in rows:
                i = index.get(row[0])
                if i is None:
                    continue
                for target, value in zip(targets, row[1:], strict=True):
                    target[i] = value
    return counts, after


# --- from columns to features -----------------------------------------------------


@dataclass
class FeatureSet:
    features: list[Feature]
    masks: list[np.ndarray]  # bool over every lead of the dataset

    def matrix(self, rows: np.ndarray | None = None):
        from scipy import sparse

        n = len(self.masks[0]) if self.masks else 0
        picked = np.arange(n) if rows is None else rows
        cols = [np.flatnonzero(m[picked]) for m in self.masks]
        indptr = np.concatenate([[0], np.cumsum([len(c) for c in cols])])
        indices = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        data = np.ones(len(indices), dtype=np.float64)
        return sparse.csc_matrix(
            (data, indices, indptr), shape=(len(picked), len(self.masks))
        ).tocsr()


def _numeric(column: Column, rows: np.ndarray) -> bool:
    if column.numbers is None:
        return False
    numbers = np.frombuffer(column.numbers, dtype=np.float64)[rows]
    codes = np.frombuffer(column.codes, dtype=np.int32)[rows]
    filled = codes != 0 if column.texts.get("(number)") is None else ~np.isnan(numbers)
    have = ~np.isnan(numbers)
    return (
        bool(filled.sum())
        and have.sum() >= 0.9 * filled.sum()
        and len(np.unique(numbers[have])) > 10
    )


def build_features(data: Dataset, rows: np.ndarray, min_support: int) -> FeatureSet:
    """Features chosen on `rows` (the training leads), evaluated on every lead."""
    features: list[Feature] = []
    masks: list[np.ndarray] = []

    def add(feature: Feature, mask: np.ndarray) -> None:
        on = int(mask[rows].sum())
        if 0 < on < len(rows):  # a condition that never varies teaches nothing
            features.append(feature)
            masks.append(mask)

    for name, column in data.columns.items():
        codes = np.frombuffer(column.codes, dtype=np.int32)
        spec = F_.field_spec(name)
        if _numeric(column, rows):
            numbers = np.frombuffer(column.numbers, dtype=np.float64)
            have = numbers[rows][~np.isnan(numbers[rows])]
            edges = np.unique(np.quantile(have, QUANTILES, method="lower"))
            for edge in edges[edges > have.min()]:
                edge = float(edge)
                with np.errstate(invalid="ignore"):
                    add(Feature(RuleKind.FIT, name, Operator.GTE, edge), numbers >= edge)
            # Empty as the engine reads it: no text for a custom attribute, no number otherwise.
            add(Feature(RuleKind.FIT, name, Operator.EMPTY), codes == 0)
            continue
        if spec.kind == F_.NUMBER:
            add(Feature(RuleKind.FIT, name, Operator.EMPTY), codes == 0)
            continue
        texts = column.text_of()
        counts = Counter(codes[rows].tolist())
        usable = [
            (n, code) for code, n in counts.items()
            if code and texts[code] == texts[code].strip() and len(texts[code]) <= MAX_TEXT
        ]  # fmt: skip
        usable.sort(reverse=True)
        frequent = [code for n, code in usable[:MAX_CATEGORIES] if n >= min_support]
        rare = [code for n, code in usable if code not in frequent]
        for code in frequent:
            add(Feature(RuleKind.FIT, name, Operator.EQUALS, texts[code]), codes == code)
        if rare and sum(counts[c] for c in rare) >= min_support and len(rare) <= 500:
            values = sorted(texts[c] for c in rare)
            add(Feature(RuleKind.FIT, name, Operator.IN, values), np.isin(codes, rare))
        if spec.kind != F_.BOOL and counts.get(0, 0) >= min_support:
            add(Feature(RuleKind.FIT, name, Operator.EMPTY), codes == 0)
    for (kind, window), counts in data.activity.items():
        positive = counts[rows][counts[rows] > 0]
        if len(positive) < min_support:
            continue
        steps = {1, 2, *np.quantile(positive, [0.5, 0.75, 0.9], method="lower").astype(int)}
        for k in sorted(s for s in steps if 1 <= s <= 10000):
            add(
                Feature(RuleKind.ENGAGEMENT, "", "", None, (kind,), int(k), window),
                counts >= k,
            )
    return FeatureSet(features, masks)
