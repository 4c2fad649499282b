"""The team view: who carries how much against capacity, SLA breaches, away
switches, and the MQLs nobody has yet (assigned from here)."""

from __future__ import annotations

from itertools import groupby

from django.contrib import messages
from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.errors import LeadflowError
from leadflow.core.tenancy import get_tenant_object_or_404
from pipeline import selectors, services
from pipeline.models import TeamMember
from pipeline.views.common import back_to

UNASSIGNED_LIMIT = 50


def _seat(request, member_id: int) -> TeamMember:
    return get_tenant_object_or_404(
        selectors.team_load(organization=request.organization), pk=member_id
    )


@require_GET
@org_view(Perm.VIEW_TEAM)
def team(request):
    organization = request.organization
    seats = list(selectors.team_load(organization=organization))
    unassigned = selectors.unassigned_mqls(organization=organization)
    context = {
        "teams": [(team, list(rows)) for team, rows in groupby(seats, key=lambda s: s.team)],
        "totals": {
            "open": sum(s.open_count for s in seats),
            "capacity": sum(s.capacity for s in seats if not s.is_away),
            "breaches": sum(s.breach_count for s in seats),
            "away": sum(1 for s in seats if s.is_away),
        },
        "unassigned": list(unassigned[:UNASSIGNED_LIMIT]),
        "unassigned_count": unassigned.count(),
        "members": list(selectors.assignable_members(organization=organization)),
        "can_route": request.membership.has_perm(Perm.MANAGE_ROUTING),
        "failed_notices": selectors.failed_notice_emails(),
    }
    return render(request, "pipeline/team.html", context)


@require_POST
@org_view(Perm.MANAGE_ROUTING)
def team_member_away(request, team_member_id: int):
    """Switch a rep's away flag (post away=1 or away=0); the seat row swaps in place."""
    member = _seat(request, team_member_id)
    away = request.POST.get("away")
    if away not in ("0", "1"):
        return HttpResponseBadRequest("Post away=1 to mark the rep away, away=0 when back.")
    error = ""
    try:
        services.team_member_set_away(member=member, away=away == "1")
    except LeadflowError as exc:
        error = str(exc)
    if request.htmx:
        context = {"seat": _seat(request, team_member_id), "error": error, "can_route": True}
        return render(request, "pipeline/partials/seat_row.html", context)
    if error:
        messages.error(request, error)
    else:
        name = member.membership.user.display_name
        messages.success(request, f"{name} is {'away' if away == '1' else 'back'}.")
    return back_to(request, "pipeline:team")
