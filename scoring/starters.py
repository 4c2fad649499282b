"""Starter rule sets, one per kind of business, chosen at sign-up and offered
on the learning page until there are enough outcomes to learn from.

Every rule tests only what is known when the lead is captured (form answers,
behaviour, consent), never a field sales fills in after qualifying. The
education set reads the questions education lead forms commonly ask, keyed as
a CSV import names them (custom attributes such as "What is your current
occupation" → `custom.what_is_your_current_occupation`); a question a form
does not ask simply matches no lead.

A set is returned in rule-set version form (scoring.selectors.RULE_FIELDS,
group as {"name", "cap"}), so it is compared, applied and rolled back like any
other version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.models import BusinessType
from scoring.models import RuleKind

ENG, FIT = RuleKind.ENGAGEMENT, RuleKind.FIT


@dataclass(frozen=True)
class StarterSet:
    key: str
    title: str
    groups: dict[str, int | None]
    rules: list[dict[str, Any]]


_EMAIL_RULES = [
    {"name": "Email click", "kind": ENG, "points": 2, "per_occurrence": True, "max_points": 10,
     "activity_kinds": ["email_click"], "group": "Email"},
    {"name": "Email open (first only)", "kind": ENG, "points": 1, "first_only": True,
     "activity_kinds": ["email_open"], "group": "Email"},
    {"name": "Unsubscribed", "kind": ENG, "points": -20, "activity_kinds": ["email_unsubscribe"]},
]  # fmt: skip

_B2B = [
    {"name": "Demo or trial request", "kind": ENG, "points": 50,
     "activity_kinds": ["demo_request", "trial_signup"]},
    {"name": "Pricing page viewed more than once", "kind": ENG, "points": 5,
     "activity_kinds": ["page_view"], "field": "url", "operator": "contains",
     "value": "/pricing", "min_count": 2, "group": "Web engagement"},
    {"name": "Page view", "kind": ENG, "points": 1, "per_occurrence": True,
     "max_points": 20, "activity_kinds": ["page_view"], "group": "Web engagement"},
    {"name": "Content download", "kind": ENG, "points": 10,
     "activity_kinds": ["content_download", "webinar"], "per_occurrence": True, "max_points": 20},
    *_EMAIL_RULES,
    {"name": "VP / Head / Director title", "kind": FIT, "points": 10, "field": "title",
     "operator": "contains", "value": "vp", "group": "Title"},
    {"name": "Head of…", "kind": FIT, "points": 10, "field": "title",
     "operator": "startswith", "value": "head", "group": "Title"},
    {"name": "C-level", "kind": FIT, "points": 15, "field": "title", "operator": "in",
     "value": ["CEO", "CTO", "CMO", "CFO", "COO", "Founder"], "group": "Title"},
    {"name": "Intern or student", "kind": FIT, "points": -10, "field": "title",
     "operator": "contains", "value": "intern", "group": "Title"},
    {"name": "Company size ≥ 200", "kind": FIT, "points": 10, "field": "company_size",
     "operator": "gte", "value": 200, "group": "Company"},
    {"name": "Business email (has a company)", "kind": FIT, "points": 5,
     "field": "company_name", "operator": "not_empty", "group": "Company"},
    {"name": "Free-mail or junk data", "kind": FIT, "points": -5, "field": "quality",
     "operator": "eq", "value": "junk"},
]  # fmt: skip

_OCCUPATION = "custom.what_is_your_current_occupation"
_TIME_ON_SITE = "custom.total_time_spent_on_website"
_EDUCATION = [
    {"name": "Filled in the enquiry form", "kind": ENG, "points": 20,
     "activity_kinds": ["form_submit"]},
    {"name": "Asked for a call or a trial lesson", "kind": ENG, "points": 30,
     "activity_kinds": ["demo_request", "trial_signup"]},
    {"name": "Came back to the course pages", "kind": ENG, "points": 2, "per_occurrence": True,
     "max_points": 20, "activity_kinds": ["page_view"], "group": "Web engagement"},
    {"name": "Brochure or webinar", "kind": ENG, "points": 10,
     "activity_kinds": ["content_download", "webinar"], "group": "Web engagement"},
    *_EMAIL_RULES,
    {"name": "Working professional", "kind": FIT, "points": 30, "field": _OCCUPATION,
     "operator": "eq", "value": "Working Professional", "group": "Situation"},
    {"name": "Student", "kind": FIT, "points": 5, "field": _OCCUPATION,
     "operator": "eq", "value": "Student", "group": "Situation"},
    {"name": "Did not say what they do", "kind": FIT, "points": -15, "field": _OCCUPATION,
     "operator": "empty", "group": "Situation"},
    {"name": "Signed up through a lead form", "kind": FIT, "points": 25,
     "field": "custom.lead_origin", "operator": "in", "value": ["Lead Add Form", "Quick Add Form"]},
    {"name": "Spent 10+ minutes on the website", "kind": FIT, "points": 15,
     "field": _TIME_ON_SITE, "operator": "gte", "value": 600, "group": "Time on site"},
    {"name": "Spent 20+ minutes on the website", "kind": FIT, "points": 10,
     "field": _TIME_ON_SITE, "operator": "gte", "value": 1200, "group": "Time on site"},
    {"name": "Junk data", "kind": FIT, "points": -10, "field": "quality", "operator": "eq",
     "value": "junk"},
]  # fmt: skip

_PRODUCT = [
    {"name": "Signed up for a trial", "kind": ENG, "points": 30,
     "activity_kinds": ["trial_signup"]},
    {"name": "Used the product", "kind": ENG, "points": 3, "per_occurrence": True,
     "max_points": 30, "window_days": 14, "activity_kinds": ["product_event"],
     "group": "Product use"},
    {"name": "Active on 5+ occasions in a week", "kind": ENG, "points": 15, "min_count": 5,
     "window_days": 7, "activity_kinds": ["product_event"], "group": "Product use"},
    {"name": "Asked for a demo", "kind": ENG, "points": 25, "activity_kinds": ["demo_request"]},
    {"name": "Pricing page viewed", "kind": ENG, "points": 10, "activity_kinds": ["page_view"],
     "field": "url", "operator": "contains", "value": "/pricing", "group": "Web engagement"},
    {"name": "Docs or pages read", "kind": ENG, "points": 1, "per_occurrence": True,
     "max_points": 10, "activity_kinds": ["page_view"], "group": "Web engagement"},
    *_EMAIL_RULES,
    {"name": "Work email (has a company)", "kind": FIT, "points": 10,
     "field": "company_name", "operator": "not_empty", "group": "Company"},
    {"name": "Team of 50+", "kind": FIT, "points": 10, "field": "company_size",
     "operator": "gte", "value": 50, "group": "Company"},
    {"name": "Junk data", "kind": FIT, "points": -10, "field": "quality", "operator": "eq",
     "value": "junk"},
]  # fmt: skip

SETS: dict[str, StarterSet] = {
    s.key: s
    for s in (
        StarterSet(BusinessType.B2B, "Starter rules for B2B",
                   {"Web engagement": 30, "Email": 15, "Title": None, "Company": None}, _B2B),
        StarterSet(BusinessType.EDUCATION, "Starter rules for B2C and education",
                   {"Web engagement": 30, "Email": 15, "Situation": None, "Time on site": None},
                   _EDUCATION),
        StarterSet(BusinessType.PRODUCT, "Starter rules for product-led businesses",
                   {"Product use": 40, "Web engagement": 20, "Email": 15, "Company": None},
                   _PRODUCT),
    )
}  # fmt: skip


def starter_rules(key: str) -> list[dict]:
    """The set's rules in version form (KeyError for an unknown key)."""
    starter = SETS[key]
    out = []
    for spec in starter.rules:
        rule = {
            "field": "", "operator": "", "value": None, "activity_kinds": [], "min_count": 1,
            "window_days": None, "per_occurrence": False, "max_points": None,
            "first_only": False, "half_life_days": None, "is_active": True, **spec,
        }  # fmt: skip
        rule["kind"] = str(rule["kind"])
        if group := rule.pop("group", None):
            rule["group"] = {"name": group, "cap": starter.groups[group]}
        out.append(rule)
    return out
