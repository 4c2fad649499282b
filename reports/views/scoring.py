"""Scoring health report: does the score rank buyers first, and which rules earn
their points?"""

from __future__ import annotations

from django.utils import timezone

from accounts.decorators import org_view
from accounts.permissions import Perm
from reports.charts import Chart, Kpi
from reports.export import Column, ReportTable
from reports.period import ReportQuery
from reports.selectors.scoring import ScoringHealth, Segment, scoring_health
from reports.views import render_report
from reports.views.digest import digest_context

SEGMENT_COLUMNS = [
    Column("won", "Won"),
    Column("leads", "Leads"),
    Column("conversion", "Conversion", "pct"),
]


def _segment_chart(slug: str, title: str, label: str, segments: list[Segment], **kw) -> Chart:
    rows = [
        {"segment": s.label, "leads": s.leads, "won": s.won, "conversion": s.conversion}
        for s in segments
    ]
    return Chart(
        slug=slug,
        title=title,
        kind="bar",
        labels=[s.label for s in segments],
        datasets=[
            {"label": "Conversion to won", "data": [s.conversion or 0 for s in segments]},
            {
                "label": "Leads",
                "data": [s.leads for s in segments],
                "type": "line",
                "axis": "y1",
                "format": "int",
                "color": "#94a3b8",
            },
        ],
        value_format="pct",
        table=ReportTable(
            slug=slug,
            title=title,
            columns=[Column("segment", label, "text"), *SEGMENT_COLUMNS],
            rows=rows,
        ),
        **kw,
    )


def _rule_table(health: ScoringHealth) -> ReportTable:
    rows = []
    for r in health.rules:
        row = {
            "rule": r.rule.name,
            "kind": r.rule.get_kind_display(),
            "points": r.rule.points,
            "matched": r.matched,
            "matched_conversion": r.matched_conversion,
            "unmatched_conversion": r.unmatched_conversion,
            "lift": r.lift,
            "lift_range": (
                f"{r.lift_interval[0]:.2f}–{r.lift_interval[1]:.2f}" if r.lift_interval else "—"
            ),
        }
        # A rule that adds points but picks leads converting worse than the rest,
        # beyond what chance explains at its sample size.
        if r.pushes_wrong_way:
            row["flag"] = "Its points push the wrong way: matched leads convert "
            row["flag"] += "worse" if r.rule.points > 0 else "better"
            row["flag_label"] = "Review"
        rows.append(row)
    return ReportTable(
        slug="rules",
        title="Rules",
        columns=[
            Column("rule", "Rule", "text"),
            Column("kind", "Kind", "text"),
            Column("points", "Points"),
            Column("matched", "Leads matched"),
            Column("matched_conversion", "Conversion if matched", "pct"),
            Column("unmatched_conversion", "Conversion if not", "pct"),
            Column("lift", "Lift", "ratio"),
            Column("lift_range", "Lift, 95 % range", "text"),
        ],
        rows=rows,
        note="Matched: the rule's condition holds for the lead today. Lift: conversion of matched "
        "leads ÷ conversion of the others (above 1: the rule finds buyers), with the range it "
        "likely lies in given the number of leads. Rules flagged 'Review' give points in the "
        "opposite direction of what their leads do, and the whole range says so.",
    )


def auc_verdict(auc: float | None) -> str:
    if auc is None:
        return "Needs won and not-won leads in the period to measure."
    if auc >= 0.8:
        return "Strong: the score ranks buyers well ahead of the rest."
    if auc >= 0.7:
        return "Good: buyers mostly score higher than the rest."
    if auc >= 0.6:
        return "Weak: the score only slightly favours buyers."
    if auc > 0.5:
        return "Barely better than chance: the rules need work."
    return "No better than chance (or worse): the score does not predict buying."


@org_view(Perm.VIEW_REPORTS)
def scoring_report(request):
    now = timezone.now()

    def build(query: ReportQuery) -> dict:
        health = scoring_health(organization_id=request.organization.pk, query=query, now=now)
        before = (
            scoring_health(organization_id=request.organization.pk, query=query.previous, now=now)
            if query.has_previous
            else None
        )
        return {
            "health": health,
            "auc_verdict": auc_verdict(health.auc),
            "kpis": [
                Kpi(
                    "Leads in cohort", health.leads, previous=before and before.leads, icon="people"
                ),
                Kpi("Won", health.won, previous=before and before.won, icon="trophy"),
                Kpi(
                    "Conversion",
                    health.conversion,
                    kind="pct",
                    previous=before and before.conversion,
                    icon="graph-up-arrow",
                ),
                Kpi(
                    "ROC AUC",
                    health.auc,
                    kind="ratio",
                    previous=before and before.auc,
                    icon="bullseye",
                    help="0.5 = chance, 1 = perfect ranking",
                ),
            ],
            "charts": [
                _segment_chart("bands", "Conversion by temperature band", "Band", health.bands),
                _segment_chart("grades", "Conversion by fit grade", "Grade", health.grades),
            ],
            "decile_chart": _segment_chart(
                "deciles",
                "Conversion by score decile",
                "Score range",
                health.deciles,
                subtitle="Leads cut into ten equal slices, highest scores first: a good score "
                "makes this fall from left to right",
            ),
            "rules": _rule_table(health),
            **digest_context(request),
        }

    return render_report(
        request, template="reports/scoring.html", build=build, export_prefix="scoring"
    )
