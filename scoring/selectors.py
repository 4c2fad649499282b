"""Reads for the scoring pages: rules with their match counts, groups, the score
distribution, gating counts, rescore jobs and the audit log.

Every function runs a fixed number of queries whatever the number of leads or
rules. Counts are taken over live leads (not discarded, not merged away), the
leads a person sees in the lead list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet

from leads.models import ActivityKind, Lead, LeadStage
from scoring.fields import FIELDS, NO_VALUE_OPS
from scoring.models import (
    DriftNotice,
    GatingRule,
    LearningJob,
    Operator,
    PostQualificationField,
    RescoreJob,
    RescoreStatus,
    RuleChange,
    RuleKind,
    RuleSetVersion,
    ScoreGroup,
    ScoringRule,
    ScoringSettings,
    TrainingLead,
    VersionStatus,
)

# What a rule-set version stores of each rule.
RULE_FIELDS = (
    "name", "kind", "field", "operator", "value", "activity_kinds", "min_count",
    "window_days", "per_occurrence", "max_points", "first_only", "half_life_days", "points",
)  # fmt: skip

KNOWN_OUTCOMES = (LeadStage.WON, LeadStage.LOST, LeadStage.DISQUALIFIED)

# Activity properties an engagement rule can filter on (free keys are allowed too).
PROPERTY_KEYS: dict[str, str] = {
    "url": "page URL",
    "form": "form name",
    "campaign": "campaign name",
    "referrer": "referrer",
    "utm_source": "UTM source",
    "utm_medium": "UTM medium",
    "utm_campaign": "UTM campaign",
    "utm_term": "UTM term",
    "utm_content": "UTM content",
}
BUCKETS_ABOVE_ZERO = 10  # the histogram spans 0 … 2 × the MQL threshold in 10 steps


def live_leads() -> QuerySet[Lead]:
    return Lead.objects.filter(discarded_at__isnull=True, merged_into__isnull=True)


def scoring_settings(*, organization_id: int) -> ScoringSettings:
    # Created with the defaults on first use, as the engine's load_config does.
    settings, _ = ScoringSettings.objects.get_or_create(organization_id=organization_id)
    return settings


# --- Rules in words -------------------------------------------------------------


def _quote(value: Any) -> str:
    return f"‘{value}’"


def format_number(value: Any) -> str:
    """200.0 → "200", 2.5 → "2.5" (rule values are stored as floats)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def value_text(operator: str, value: Any) -> str:
    """A stored rule value as the text the form shows (the inverse of normalize_value)."""
    if value is None or operator in NO_VALUE_OPS:
        return ""
    if isinstance(value, list):
        return ", ".join(format_number(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format_number(value)


def field_label(field: str) -> str:
    if field.startswith("custom."):
        return f"Custom attribute {_quote(field.removeprefix('custom.'))}"
    spec = FIELDS.get(field)
    return spec.label if spec else field


def condition_text(label: str, operator: str, value: Any) -> str:
    """“Job title contains ‘vp’”, “Company size between 50 and 200”."""
    try:
        op_label = Operator(operator).label
    except ValueError:
        op_label = operator
    if operator in NO_VALUE_OPS:
        return f"{label} {op_label}"
    if operator == Operator.BETWEEN and isinstance(value, list) and len(value) == 2:
        return f"{label} between {format_number(value[0])} and {format_number(value[1])}"
    if isinstance(value, list):
        shown = ", ".join(_quote(format_number(v)) for v in value[:6])
        more = f" (+{len(value) - 6} more)" if len(value) > 6 else ""
        return f"{label} {op_label} {shown}{more}"
    if isinstance(value, bool):
        return f"{label} {op_label} {'yes' if value else 'no'}"
    if isinstance(value, int | float):
        return f"{label} {op_label} {format_number(value)}"
    return f"{label} {op_label} {_quote(value)}"


def _kinds_text(kinds: list[str]) -> str:
    labels = []
    for kind in kinds:
        try:
            labels.append(ActivityKind(kind).label)
        except ValueError:
            labels.append(kind)
    if len(labels) <= 1:
        return "".join(labels) or "No activity"
    return ", ".join(labels[:-1]) + " or " + labels[-1]


def describe_rule(rule: ScoringRule) -> str:
    """The rule's condition in words, as the rules page lists it."""
    if rule.kind == RuleKind.FIT:
        return condition_text(field_label(rule.field), rule.operator, rule.value)
    text = _kinds_text(list(rule.activity_kinds or []))
    if rule.field:
        label = PROPERTY_KEYS.get(rule.field, f"property {_quote(rule.field)}")
        text += f" where {condition_text(label, rule.operator, rule.value)}"
    if rule.min_count > 1:
        text += f", at least {rule.min_count} times"
    if rule.window_days:
        text += f" in the last {rule.window_days} days"
    return text


def describe_scoring(rule: ScoringRule) -> str:
    """How an engagement rule turns matches into points: “+2 per occurrence, max 10”."""
    if rule.kind == RuleKind.FIT:
        return ""
    if rule.first_only:
        text = "first occurrence only"
    elif rule.per_occurrence:
        text = "per occurrence"
    else:
        text = "once"
    if rule.max_points is not None:
        text += f", max {abs(rule.max_points)}"
    if rule.half_life_days:
        text += f", half-life {rule.half_life_days} d"
    return text


def describe_gate(gate: GatingRule) -> str:
    return condition_text(field_label(gate.field), gate.operator, gate.value)


# --- Rules page -----------------------------------------------------------------


def rule_match_counts(*, rule_ids: list[int]) -> dict[int, int]:
    """Live leads whose stored breakdown has non-zero points from each rule.

    The breakdown is written by every rescore, so this is what the rule
    contributes today (a rule just saved counts once its rescore job ran).
    One statement whatever the number of rules: each lead's breakdown is
    expanded into (rule, points) rows once and counted per rule (reading
    one key per rule would parse the breakdown again for every rule). One
    rule's row (after a toggle) reads its one key instead."""
    if not rule_ids:
        return {}
    if len(rule_ids) == 1:
        key = f"score_breakdown__r{rule_ids[0]}"
        nonzero_q = Q(**{f"{key}__gt": 0}) | Q(**{f"{key}__lt": 0})
        return {rule_ids[0]: live_leads().filter(nonzero_q).count()}
    lead_sql, params = live_leads().order_by().values("score_breakdown").query.sql_with_params()
    if connection.vendor == "postgresql":
        # jsonb_each refuses a non-object; NULL gives no rows.
        entries = (
            "jsonb_each(CASE WHEN jsonb_typeof(l.score_breakdown) = 'object'"
            " THEN l.score_breakdown END) e"
        )
        nonzero = "jsonb_typeof(e.value) = 'number' AND e.value <> '0'::jsonb"
    else:
        entries = "json_each(CASE WHEN json_type(l.score_breakdown) = 'object'"
        entries += " THEN l.score_breakdown END) e"
        nonzero = "e.type IN ('integer', 'real') AND e.value <> 0"
    sql = (
        f"SELECT e.key, COUNT(*) FROM ({lead_sql}) l CROSS JOIN {entries}"
        f" WHERE {nonzero} GROUP BY e.key"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        counts = dict(cursor.fetchall())
    return {pk: counts.get(f"r{pk}", 0) for pk in rule_ids}


def rules_for_page() -> dict[str, list[ScoringRule]]:
    """Fit and engagement rules, each with `condition`, `scoring` and `matches` set."""
    rules = list(ScoringRule.objects.select_related("group").order_by("kind", "position", "pk"))
    matches = rule_match_counts(rule_ids=[r.pk for r in rules])
    by_kind: dict[str, list[ScoringRule]] = {RuleKind.FIT: [], RuleKind.ENGAGEMENT: []}
    for rule in rules:
        annotate_rule(rule, matches.get(rule.pk, 0))
        by_kind.setdefault(rule.kind, []).append(rule)
    return by_kind


def annotate_rule(rule: ScoringRule, matches: int) -> ScoringRule:
    rule.condition = describe_rule(rule)
    rule.scoring = describe_scoring(rule)
    rule.matches = matches
    return rule


def rule_for_row(*, rule: ScoringRule) -> ScoringRule:
    """One rule with what its row shows (after an htmx toggle)."""
    return annotate_rule(rule, rule_match_counts(rule_ids=[rule.pk])[rule.pk])


def groups_for_page() -> QuerySet[ScoreGroup]:
    return ScoreGroup.objects.annotate(
        n_rules=Count("rules"), n_active=Count("rules", filter=Q(rules__is_active=True))
    ).order_by("name")


def next_rule_position(*, kind: str) -> int:
    top = ScoringRule.objects.filter(kind=kind).aggregate(top=Max("position"))["top"]
    return 0 if top is None else top + 1


# --- Score distribution -----------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    label: str
    low: int | None  # inclusive; None = open
    high: int | None  # exclusive; None = open

    def contains(self, score: int) -> bool:
        return (self.low is None or score >= self.low) and (self.high is None or score < self.high)


def score_buckets(*, threshold: int) -> list[Bucket]:
    """Histogram buckets: negatives, 10 equal steps up to 2 × the MQL threshold, the rest.

    The step is threshold / 5 (rounded up), so the threshold falls on a bucket
    edge whenever it is a multiple of 5."""
    step = max(1, math.ceil(threshold / 5))
    buckets = [Bucket("< 0", None, 0)]
    for i in range(BUCKETS_ABOVE_ZERO):
        low, high = i * step, (i + 1) * step
        label = str(low) if step == 1 else f"{low}–{high - 1}"
        buckets.append(Bucket(label, low, high))
    top = BUCKETS_ABOVE_ZERO * step
    buckets.append(Bucket(f"{top}+", top, None))
    return buckets


def bucket_q(bucket: Bucket, field: str) -> Q:
    q = Q()
    if bucket.low is not None:
        q &= Q(**{f"{field}__gte": bucket.low})
    if bucket.high is not None:
        q &= Q(**{f"{field}__lt": bucket.high})
    return q


@dataclass
class Distribution:
    """Live leads per score bucket, with the MQL-eligible ones among them."""

    buckets: list[Bucket]
    counts: list[int]
    mqls: list[int]
    total: int
    mql: int
    unscored: int = 0

    @property
    def rows(self) -> list[dict]:
        return [
            {
                "label": b.label,
                "count": n,
                "mql": m,
                "share": round(100 * n / self.total, 1) if self.total else 0,
            }
            for b, n, m in zip(self.buckets, self.counts, self.mqls, strict=True)
        ]

    def chart_data(self, *, threshold: int, label: str = "Leads") -> dict:
        """For the histogram: bars from the one holding the threshold up are MQL range."""
        mql_from = next(
            i for i, b in enumerate(self.buckets) if b.high is None or b.high > threshold
        )
        return {
            "labels": [b.label for b in self.buckets],
            "series": [{"label": label, "data": list(self.counts)}],
            "mql_from": mql_from,
        }


def score_distribution(*, settings: ScoringSettings) -> Distribution:
    """Stored scores of the live leads, bucketed, in one query."""
    buckets = score_buckets(threshold=settings.mql_threshold)
    mql = Q(mql_eligible=True)
    aggregates = {"total": Count("pk"), "mql": Count("pk", filter=mql)}
    aggregates["unscored"] = Count("pk", filter=Q(scored_at__isnull=True))
    for i, bucket in enumerate(buckets):
        aggregates[f"b{i}"] = Count("pk", filter=bucket_q(bucket, "score"))
        aggregates[f"m{i}"] = Count("pk", filter=bucket_q(bucket, "score") & mql)
    row = live_leads().aggregate(**aggregates)
    return Distribution(
        buckets=buckets,
        counts=[row[f"b{i}"] for i in range(len(buckets))],
        mqls=[row[f"m{i}"] for i in range(len(buckets))],
        total=row["total"],
        mql=row["mql"],
        unscored=row["unscored"],
    )


# --- Gating, jobs, audit ---------------------------------------------------------------


def gates_for_page() -> list[GatingRule]:
    """Gating rules, each with `condition` and `gated` (live leads it blocks now)."""
    gates = list(GatingRule.objects.order_by("pk"))
    if not gates:
        return gates
    rows = (
        live_leads()
        .exclude(gating_reason="")
        .order_by()
        .values_list("gating_reason")
        .annotate(n=Count("pk"))
    )
    gated = dict(rows)
    for gate in gates:
        gate.condition = describe_gate(gate)
        # The engine stores the reason of the first gate that holds.
        gate.gated = gated.get(gate.reason[:200], 0)
    return gates


ACTIVE_JOB = (RescoreStatus.QUEUED, RescoreStatus.RUNNING)


def latest_rescore_job() -> RescoreJob | None:
    return RescoreJob.objects.order_by("-created_at", "-pk").first()


AUDIT_FIELD_LABELS = {
    "name": "Name",
    "kind": "Kind",
    "group": "Group",
    "is_active": "Active",
    "points": "Points",
    "field": "Field",
    "operator": "Operator",
    "value": "Value",
    "activity_kinds": "Activities",
    "min_count": "At least (times)",
    "window_days": "Window (days)",
    "per_occurrence": "Per occurrence",
    "max_points": "Max points",
    "first_only": "First only",
    "half_life_days": "Half-life (days)",
    "mql_threshold": "MQL threshold",
    "min_fit_grade": "Minimum fit grade",
    "grade_bands": "Grade bands",
    "temperature_bands": "Temperature bands",
    "total_ceiling": "Total ceiling",
    "reason": "Reason",
}


def _audit_value(key: str, value: Any, group_names: dict[int, str]) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if key == "group" and isinstance(value, int):
        return group_names.get(value, f"#{value} (deleted)")
    if key == "operator":
        try:
            return Operator(value).label
        except ValueError:
            return str(value)
    if key == "activity_kinds" and isinstance(value, list):
        return _kinds_text(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k} {format_number(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(format_number(v) for v in value)
    return format_number(value)


def is_diff(change: RuleChange) -> bool:
    """Rule and settings edits store {field: [before, after]}; deletions and gate
    edits store a snapshot of the values (see scoring.services)."""
    return change.action != "deleted" and not change.subject.startswith("Gate: ")


def _blank(value: Any) -> bool:
    return value is None or value is False or value == "" or value == [] or value == {}


def change_lines(change: RuleChange, group_names: dict[int, str]) -> list[dict]:
    """What a RuleChange changed, field by field: label, before (edits only), after.

    A creation lists the values it set; blank ones (no window, not first-only…)
    are left out, as they are from snapshots."""
    diff = is_diff(change)
    order = list(AUDIT_FIELD_LABELS)
    keys = sorted(change.changes or {}, key=lambda k: order.index(k) if k in order else len(order))
    lines = []
    for key in keys:
        entry = change.changes[key]
        pair = diff and isinstance(entry, list) and len(entry) == 2
        before, after = entry if pair else (None, entry)
        if _blank(before) and _blank(after):
            continue
        if change.action == "created" or not pair:
            if _blank(after):
                continue
            before = None
        lines.append(
            {
                "label": AUDIT_FIELD_LABELS.get(key, key.replace("_", " ").capitalize()),
                "before": None if before is None else _audit_value(key, before, group_names),
                "after": _audit_value(key, after, group_names),
            }
        )
    return lines


def audit_log(*, limit: int | None = None) -> QuerySet[RuleChange]:
    qs = RuleChange.objects.select_related("actor").order_by("-at", "-pk")
    return qs[:limit] if limit else qs


def with_change_lines(changes) -> list[RuleChange]:
    """Attach `lines` to each change; group ids are shown by name (one query)."""
    changes = list(changes)
    group_names = dict(ScoreGroup.objects.values_list("pk", "name")) if changes else {}
    for change in changes:
        change.lines = change_lines(change, group_names)
    return changes


def post_qualification_fields() -> set[str]:
    """The active organization's fields marked as filled in by sales."""
    return set(PostQualificationField.objects.values_list("field", flat=True))


# --- Learning and rule-set versions ---------------------------------------------------

DRIFT_DROP = 0.05  # holdout AUC points lost before the admin is told
DRIFT_MIN_OUTCOMES = 30  # of each kind among the unseen leads


def outcome_counts() -> dict[str, int]:
    """Live leads won, lost (or disqualified) and still open, for the minimum-data guard."""
    from scoring.learning import MIN_OUTCOMES

    counts = live_leads().aggregate(
        won=Count("pk", filter=Q(stage=LeadStage.WON)),
        lost=Count("pk", filter=Q(stage__in=[LeadStage.LOST, LeadStage.DISQUALIFIED])),
        total=Count("pk"),
    )
    counts["open"] = counts["total"] - counts["won"] - counts["lost"]
    counts["minimum"] = MIN_OUTCOMES
    counts["won_needed"] = max(0, MIN_OUTCOMES - counts["won"])
    counts["lost_needed"] = max(0, MIN_OUTCOMES - counts["lost"])
    return counts


def applied_version() -> RuleSetVersion | None:
    return RuleSetVersion.objects.filter(status=VersionStatus.APPLIED).first()


def versions_for_page() -> list[RuleSetVersion]:
    return list(
        RuleSetVersion.objects.exclude(status=VersionStatus.DISCARDED)
        .select_related("created_by", "applied_by")
        .order_by("-number")[:20]
    )


def latest_learning_job() -> LearningJob | None:
    return LearningJob.objects.select_related("version").first()


def unseen_outcomes(version_id: int, leads: QuerySet[Lead] | None = None) -> QuerySet[Lead]:
    """Leads (default: the live ones) with a known outcome that the version was
    not learned from."""
    trained = TrainingLead.objects.filter(version_id=version_id, lead_id=OuterRef("pk"))
    leads = live_leads() if leads is None else leads
    return leads.filter(stage__in=KNOWN_OUTCOMES).exclude(Exists(trained))


def drift_check() -> dict | None:
    """When the learned rules in use rank the leads they were not learned from
    clearly worse than they did on their holdout, say so (None otherwise)."""
    from scoring.learning.model import auc

    version = applied_version()
    if version is None or version.source != "learned":
        return None
    learned_auc = (version.metrics.get("holdout") or {}).get("auc")
    rows = list(unseen_outcomes(version.pk).values_list("score", "stage"))
    won = sum(stage == LeadStage.WON for _, stage in rows)
    if learned_auc is None or min(won, len(rows) - won) < DRIFT_MIN_OUTCOMES:
        return None
    import numpy as np

    now_auc = auc(
        np.array([s for s, _ in rows], dtype=float),
        np.array([stage == LeadStage.WON for _, stage in rows], dtype=np.int64),
    )
    if now_auc is None or learned_auc - now_auc <= DRIFT_DROP:
        return None
    return {"version": version.number, "learned": learned_auc, "now": now_auc, "leads": len(rows)}


def open_drift_notice() -> DriftNotice | None:
    return DriftNotice.objects.filter(resolved_at__isnull=True).first()


def _rule_key(rule: dict) -> tuple:
    value = rule.get("value")
    return (
        rule.get("kind"), rule.get("field") or "", rule.get("operator") or "",
        repr(sorted(value) if isinstance(value, list) else value),
        tuple(sorted(rule.get("activity_kinds") or [])),
        int(rule.get("min_count") or 1), rule.get("window_days"),
    )  # fmt: skip


def rule_changes(before: list[dict], after: list[dict]) -> list[dict]:
    """Rules added, removed or given other points, biggest change first."""
    old = {_rule_key(r): r for r in before if r.get("is_active", True)}
    new = {_rule_key(r): r for r in after if r.get("is_active", True)}
    out = []
    for key in old.keys() | new.keys():
        a, b = old.get(key), new.get(key)
        was, now = (a or {}).get("points", 0), (b or {}).get("points", 0)
        if was == now:
            continue
        change = "added" if a is None else "removed" if b is None else "changed"
        named = b if b is not None else a
        assert named is not None  # the key came from one of the two
        out.append({"name": named["name"], "change": change, "before": was, "after": now})
    out.sort(key=lambda c: (-abs(c["after"] - c["before"]), c["name"]))
    return out


def live_rules() -> list[dict]:
    """The live rules as version data (group by name and cap)."""
    out = []
    for rule in ScoringRule.objects.select_related("group").order_by("kind", "position", "pk"):
        data = {name: getattr(rule, name) for name in RULE_FIELDS}
        data["is_active"] = rule.is_active
        if rule.group:
            data["group"] = {"name": rule.group.name, "cap": rule.group.cap}
        out.append(data)
    return out


def version_compare(version: RuleSetVersion) -> dict:
    """The draft beside the rules in use, from the figures learning stored."""
    metrics = version.metrics or {}
    holdout = metrics.get("holdout") or {}

    def pct(row: dict | None) -> dict | None:
        if row is None:
            return None
        rate = row.get("expected")
        return {**row, "pct": None if rate is None else round(100 * rate, 1)}

    current_bands = {b["key"]: b for b in holdout.get("current_bands", [])}
    bands = [
        {"key": d["key"], "draft": pct(d), "current": pct(current_bands.get(d["key"]))}
        for d in holdout.get("draft_bands", [])
    ]
    return {
        "holdout": holdout,
        "bands": bands,
        "changes": rule_changes(live_rules(), version.rules),
        "mql": metrics.get("mql") or {},
        "changed_band": metrics.get("changed_band"),
        "leads": metrics.get("leads"),
        "warnings": metrics.get("warnings") or [],
        "calibrated": [pct(b) for b in metrics.get("bands") or []],
    }


def expected_conversion(*, score: int | None) -> float | None:
    """P(convert) for a score under the learned rules in use (None otherwise)."""
    version = applied_version()
    calibration = (version.metrics or {}).get("calibration") if version else None
    if not calibration or score is None:
        return None
    from scoring.learning.model import expected

    return expected(calibration["a"], calibration["b"], score)
