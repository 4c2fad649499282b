"""The weekly digest opt-in: a toggle on every report page (htmx swaps the button;
without JavaScript the form posts and comes back to the page)."""

from __future__ import annotations

from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.redirects import safe_next
from reports.digest import digest_status, digest_subscription_toggle


def digest_context(request) -> dict:
    status = digest_status(membership=request.membership)
    return {
        "digest_subscribed": status.subscribed,
        "digest_failed_week": status.failed_week,
        "digest_error": status.error,
        "digest_next": request.get_full_path(),
    }


@require_POST
@org_view(Perm.VIEW_REPORTS)
def digest_toggle(request):
    sub = digest_subscription_toggle(membership=request.membership)
    back = safe_next(request)
    if request.htmx:
        context = {"digest_subscribed": sub.weekly, "digest_next": back}
        return render(request, "reports/digest_toggle.html", context)
    if back:
        return redirect(back)
    return redirect("reports:sales", org_slug=request.organization.slug)
