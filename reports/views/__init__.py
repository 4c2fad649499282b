"""Shared machinery of the report pages: parse the period and filters, scope a
sales rep to their own and their team's leads, build the page, and answer
`?export=<table slug>` with that table's CSV.

A page view is `render_report(request, template=..., build=...)` where `build(query)`
returns the template context; every `ReportTable` and `Chart` in it (top level or
inside a list) is downloadable by its slug. A report page reads from the
PostgreSQL replica when one is configured (leadflow/core/dbrouter.py).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpResponse
from django.shortcuts import render

from accounts.models import Membership, Role
from leadflow.core.dbrouter import replica_reads
from leads.models import Campaign, Channel
from pipeline.models import Team
from reports.charts import Chart
from reports.export import ReportTable, csv_response
from reports.period import COMPARES, GRAINS, ReportInputError, ReportQuery, parse_report_query


def _tables(context: dict) -> dict[str, ReportTable]:
    found: dict[str, ReportTable] = {}

    def visit(value):
        if isinstance(value, ReportTable):
            found[value.slug] = value
        elif isinstance(value, Chart) and value.table is not None:
            found[value.table.slug] = value.table
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)

    for value in context.values():
        visit(value)
    return found


def filter_options(request, query: ReportQuery | None) -> dict:
    """Choices of the period form's filters (`choices` in the template): only this
    org's campaigns and teams, and only the members a rep may report on."""
    membership = request.membership
    members = Membership.objects.filter(
        organization=request.organization, is_active=True, role__in=[Role.SALES_REP, Role.ADMIN]
    ).select_related("user")
    if query is not None and query.owner_ids is not None:
        members = members.filter(pk__in=sorted(query.owner_ids))
    elif membership.role == Role.SALES_REP:
        members = members.filter(pk=membership.pk)
    teams = Team.objects.order_by("name")
    if membership.role == Role.SALES_REP:
        # A rep reports on their own teams only; other teams' names stay hidden.
        teams = teams.filter(members__membership=membership)
    return {
        "sources": Channel.choices,
        "campaigns": list(Campaign.objects.order_by("name").values_list("pk", "name")),
        "teams": list(teams.values_list("pk", "name").distinct()),
        "reps": sorted(((m.pk, m.user.display_name) for m in members), key=lambda x: x[1].lower()),
        "grains": GRAINS.items(),
        "compares": COMPARES.items(),
    }


def render_report(
    request,
    *,
    template: str,
    build: Callable[[ReportQuery], dict],
    export_prefix: str = "report",
) -> HttpResponse:
    with replica_reads():  # reads only: a few seconds of replica lag are fine here
        return _render_report(request, template=template, build=build, export_prefix=export_prefix)


def _render_report(request, *, template: str, build, export_prefix: str) -> HttpResponse:
    export = (request.GET.get("export") or "").strip()
    try:
        query = parse_report_query(
            request.GET, organization=request.organization, membership=request.membership
        )
    except ReportInputError as error:
        if export or request.GET.get("format") == "json":
            return HttpResponse(str(error), status=400, content_type="text/plain; charset=utf-8")
        context = {"query": None, "error": str(error), "params": request.GET}
        context["choices"] = filter_options(request, None)
        return render(request, template, context, status=400)

    context = build(query)
    if export:
        table = _tables(context).get(export)
        if table is None:
            return HttpResponse(
                f"No table named “{export[:40]}” on this report.",
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        return csv_response(table, prefix=export_prefix)

    context.update(
        query=query,
        error="",
        params=query.params(),
        is_rep_view=query.owner_ids is not None,
    )
    context["choices"] = filter_options(request, query)
    return render(request, template, context)
