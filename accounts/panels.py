"""Panels on the organization overview, contributed by higher apps (leads,
reports…) on leadflow.core.hooks.home_panels without accounts importing them, and
the page a role lands on instead (leadflow.core.hooks.role_home)."""

from leadflow.core import hooks


def panels_for(request) -> list[dict]:
    return [panel for panel in hooks.home_panels.call(request) if panel]


def home_for(role: str) -> str | None:
    """The URL name (taking org_slug) a role's home redirects to, if any: the
    first answer in the hook's order, e.g. a sales rep's lead queue."""
    return next((name for name in hooks.role_home.call(role) if name), None)
