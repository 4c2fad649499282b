"""Rule sets as CSV or YAML, to keep, review in a spreadsheet, or share with another
organization: export the rules in use; importing a file makes a draft
version, compared and applied like a learned one (never applied silently).

One row per rule; `value` and `group` are JSON, `activity_kinds` are
separated by "|". Every imported rule must compile exactly as the rule forms
would accept it, and may not test a field marked as filled in by sales.
"""

from __future__ import annotations

import csv
import io
import json

import yaml
from django.utils import timezone

from leadflow.core.csvsafe import FORMULA_START, neutralize
from leadflow.core.errors import LeadflowError
from leads.models import ActivityKind
from scoring import engine
from scoring import fields as F_
from scoring.models import POINTS_LIMIT, RuleKind, ScoringRule

COLUMNS = [
    "name", "kind", "points", "field", "operator", "value", "activity_kinds", "min_count",
    "window_days", "per_occurrence", "max_points", "first_only", "half_life_days", "group",
    "is_active",
]  # fmt: skip
MAX_RULES = 1000


class RuleImportError(LeadflowError):
    """A rules file that can't be imported; says which rows and why."""


def rules_csv(rules: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for rule in rules:
        writer.writerow(
            [
                neutralize(rule.get("name", "")),
                rule.get("kind", ""),
                rule.get("points", 0),
                rule.get("field") or "",
                rule.get("operator") or "",
                json.dumps(rule.get("value")),
                "|".join(rule.get("activity_kinds") or []),
                rule.get("min_count", 1),
                rule.get("window_days") or "",
                "yes" if rule.get("per_occurrence") else "",
                "" if rule.get("max_points") is None else rule["max_points"],
                "yes" if rule.get("first_only") else "",
                rule.get("half_life_days") or "",
                json.dumps(rule["group"]) if rule.get("group") else "",
                "" if rule.get("is_active", True) else "no",
            ]
        )
    return out.getvalue()


def _int(text: str, what: str, low: int, high: int, default=None):
    if not text.strip():
        return default
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"{what} must be a whole number") from None
    if not low <= number <= high:
        raise ValueError(f"{what} must be between {low} and {high}")
    return number


def _rule(row: dict[str, str], refused: set[str]) -> dict:
    name = row.get("name", "").strip()
    if name[:1] == "'" and name[1:2] in FORMULA_START:
        name = name[1:]  # the export's guard against spreadsheet formulas
    kind = row.get("kind", "").strip()
    if kind not in RuleKind.values:
        raise ValueError(f"kind must be {' or '.join(RuleKind.values)}")
    rule = {
        "name": name[:200] or "Imported rule",
        "kind": kind,
        "points": _int(row.get("points", ""), "points", -POINTS_LIMIT, POINTS_LIMIT),
        "field": row.get("field", "").strip(),
        "operator": row.get("operator", "").strip(),
        "value": json.loads(row.get("value") or "null"),
        "activity_kinds": [k for k in row.get("activity_kinds", "").split("|") if k],
        "min_count": _int(row.get("min_count", ""), "min_count", 1, 10000, 1),
        "window_days": _int(row.get("window_days", ""), "window_days", 1, 3650),
        "per_occurrence": row.get("per_occurrence", "").strip().lower() == "yes",
        "max_points": _int(
            row.get("max_points", ""), "max_points", -POINTS_LIMIT * 100, POINTS_LIMIT * 100
        ),
        "first_only": row.get("first_only", "").strip().lower() == "yes",
        "half_life_days": _int(row.get("half_life_days", ""), "half_life_days", 1, 3650),
        "is_active": row.get("is_active", "").strip().lower() != "no",
    }
    if rule["points"] is None:
        raise ValueError("points are required")
    if row.get("group", "").strip():
        group = json.loads(row["group"])
        if not isinstance(group, dict) or not str(group.get("name", "")).strip():
            raise ValueError('group must look like {"name": "Email", "cap": 15}')
        cap = group.get("cap")
        rule["group"] = {
            "name": str(group["name"])[:100],
            "cap": cap if isinstance(cap, int) else None,
        }
    if kind == RuleKind.FIT:
        if rule["field"] in refused:
            raise ValueError(f"{rule['field']} is filled in by sales and can't score leads")
        rule["value"] = F_.normalize_value(rule["field"], rule["operator"], rule["value"])
        F_.condition(rule["field"], rule["operator"], rule["value"])
    else:
        unknown = set(rule["activity_kinds"]) - set(ActivityKind.values)
        if unknown:
            raise ValueError(f"unknown activity kinds: {', '.join(sorted(unknown))}")
        candidate = ScoringRule(**{k: v for k, v in rule.items() if k not in ("group",)})
        engine.activity_filter(candidate, timezone.now())
    return rule


def parse_rules_csv(text: str, *, refused: set[str]) -> list[dict]:
    """The rules of a CSV file, or RuleImportError naming every bad row."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames or not {"name", "kind", "points"} <= set(reader.fieldnames):
        raise RuleImportError("This is not a rules file: it needs name, kind and points columns.")
    rules, problems = [], []
    for number, row in enumerate(reader, start=2):
        if number - 1 > MAX_RULES:
            raise RuleImportError(f"A rule set has at most {MAX_RULES} rules.")
        try:
            rules.append(_rule(row, refused))
        except (ValueError, TypeError, F_.RuleError) as exc:
            problems.append(f"row {number}: {exc}")
    return _all_or_nothing(rules, problems)


def _all_or_nothing(rules: list, problems: list[str]) -> list:
    """An import is every rule or none: the first problems are named, by line."""
    if problems:
        raise RuleImportError("Nothing imported. " + "; ".join(problems[:20]))
    if not rules:
        raise RuleImportError("The file has no rules.")
    return rules


# --- YAML -------------------------------------------------------------------------------

YAML_HEADER = "# LeadFlow scoring rules: import this file as a draft on the learning page.\n"


def _unused(column: str, value) -> bool:
    """A setting the rule leaves at its default (not written to YAML)."""
    if column == "min_count":
        return value in (None, 1)
    if column == "is_active":
        return value is not False
    return value is None or value is False or value == "" or value == []


def rules_yaml(rules: list[dict]) -> str:
    """The rules as a YAML list under `rules:`, one mapping per rule, leaving
    out the settings a rule does not use."""
    out = []
    for rule in rules:
        item = {"name": rule.get("name", ""), "kind": rule.get("kind", ""),
                "points": rule.get("points", 0)}  # fmt: skip
        item.update(
            (column, rule[column])
            for column in COLUMNS[3:]
            if not _unused(column, rule.get(column))
        )
        out.append(item)
    return YAML_HEADER + yaml.safe_dump(
        {"rules": out}, sort_keys=False, allow_unicode=True, default_flow_style=False
    )


def _row(item: dict) -> dict[str, str]:
    """A YAML rule as the CSV row `_rule` validates (one set of checks)."""
    unknown = set(item) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
    row = {}
    for column in COLUMNS:
        value = item.get(column)
        if column in ("value", "group"):
            row[column] = "" if value is None and column == "group" else json.dumps(value)
        elif column == "activity_kinds":
            kinds = value or []
            if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
                raise ValueError("activity_kinds must be a list of activity kinds")
            row[column] = "|".join(kinds)
        elif isinstance(value, bool):
            row[column] = "yes" if value else "no"
        elif isinstance(value, (int, str)) or value is None:
            row[column] = "" if value is None else str(value)
        else:
            raise ValueError(f"{column} must be a number or text")
    return row


def parse_rules_yaml(text: str, *, refused: set[str]) -> list[dict]:
    """The rules of a YAML file, or RuleImportError naming the line of every bad rule."""
    try:
        root = yaml.compose(text.lstrip("\ufeff"), Loader=yaml.SafeLoader)
        data = yaml.safe_load(text.lstrip("\ufeff"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" on line {mark.line + 1}" if mark else ""
        raise RuleImportError(f"This is not valid YAML{where}.") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RuleImportError("This is not a rules file: it needs a `rules:` list.")
    nodes = next(v for k, v in root.value if k.value == "rules").value
    if len(data["rules"]) > MAX_RULES:
        raise RuleImportError(f"A rule set has at most {MAX_RULES} rules.")
    rules, problems = [], []
    for node, item in zip(nodes, data["rules"], strict=True):
        line = node.start_mark.line + 1
        try:
            if not isinstance(item, dict):
                raise ValueError("each rule must be a mapping of name, kind, points…")
            rules.append(_rule(_row(item), refused))
        except (ValueError, TypeError, F_.RuleError) as exc:
            problems.append(f"line {line}: {exc}")
    return _all_or_nothing(rules, problems)
