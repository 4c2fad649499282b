"""A member's notifications: the bell in the top bar (a count htmx polls, a panel),
the list page, opening one (marks it read, goes to its page), marking all read,
and the email preferences. Every member has them; each sees only their own."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.decorators import org_view
from accounts.permissions import Perm
from leadflow.core.redirects import redirect_next, safe_next
from pipeline import selectors_notifications as selectors
from pipeline.forms_notifications import NotificationPreferencesForm
from pipeline.services import notifications as services

LIST_PAGE_SIZE = 25


def _url(request, name: str) -> str:
    return reverse(f"notifications:{name}", kwargs={"org_slug": request.organization.slug})


@require_GET
@org_view(Perm.RECEIVE_NOTIFICATIONS)
def bell(request):
    """The unread count (polled by the bell every few seconds)."""
    state = selectors.bell_state(membership_id=request.membership.pk)
    return render(request, "pipeline/partials/notification_count.html", state)


@require_GET
@org_view(Perm.RECEIVE_NOTIFICATIONS)
def panel(request):
    """The bell's dropdown: the latest notices with links."""
    return _panel(request)


def _panel(request):
    notices = selectors.recent_notifications(membership_id=request.membership.pk)
    return render(request, "pipeline/partials/notification_panel.html", {"notices": notices})


@require_GET
@org_view(Perm.RECEIVE_NOTIFICATIONS)
def notification_list(request):
    page = Paginator(
        selectors.notifications_of(membership_id=request.membership.pk), LIST_PAGE_SIZE
    ).get_page(request.GET.get("page"))
    return render(request, "pipeline/notification_list.html", {"page": page})


@require_GET
@org_view(Perm.RECEIVE_NOTIFICATIONS)
def notification_open(request, notification_id: int):
    """Open a notice: it is marked read and the member goes to the page it is about."""
    notice = services.notification_open(
        recipient_id=request.membership.pk, notification_id=notification_id
    )
    if notice is None:
        raise Http404("No such notification")
    # The link is ours, but only a path of this site is ever followed.
    target = notice.link if notice.link.startswith("/") else ""
    return HttpResponseRedirect(safe_next(request, target) or _url(request, "list"))


@require_POST
@org_view(Perm.RECEIVE_NOTIFICATIONS)
def mark_all_read(request):
    services.notifications_mark_read(recipient_id=request.membership.pk)
    if request.htmx:
        response = _panel(request)
        response["HX-Trigger"] = "notifications-changed"
        return response
    return redirect_next(request, _url(request, "list"))


@require_http_methods(["GET", "POST"])
@org_view(Perm.RECEIVE_NOTIFICATIONS)
def preferences(request):
    membership = request.membership
    modes = services.email_preferences(membership_id=membership.pk)
    form = NotificationPreferencesForm(request.POST or None, initial_modes=modes)
    if request.method == "POST" and form.is_valid():
        services.email_preferences_save(membership=membership, modes=form.cleaned_data)
        messages.success(request, "Your email preferences are saved.")
        return redirect("notifications:preferences", org_slug=request.organization.slug)
    return render(request, "pipeline/notification_preferences.html", {"form": form})
