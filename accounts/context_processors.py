"""Template context for the layout: the active organization, the member's seat,
the organizations they can switch to, and the navigation their role may use."""

from django.utils.functional import SimpleLazyObject

from accounts.navigation import LazyHtml, navigation_for, navigation_html
from accounts.switcher import switcher_entries


def tenancy(request):
    membership = getattr(request, "membership", None)
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"current_org": None, "current_membership": None, "nav_items": [], "nav_html": ""}
    nav_items = SimpleLazyObject(lambda: navigation_for(request, membership))
    return {
        "current_org": getattr(request, "organization", None),
        "current_membership": membership,
        "switchable_memberships": SimpleLazyObject(lambda: switcher_entries(user=user)),
        "nav_items": nav_items,
        "nav_html": LazyHtml(lambda: navigation_html(nav_items)),
    }
