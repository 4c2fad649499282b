from django.apps import AppConfig
from django.db.models.signals import post_migrate


class LeadsConfig(AppConfig):
    name = "leads"

    def ready(self) -> None:
        from accounts.management.commands.seed_demo import demo_steps
        from accounts.panels import home_panels
        from leads import demo, home

        if demo.seed not in demo_steps:
            demo_steps.append(demo.seed)
        if home.leads_panel not in home_panels:
            home_panels.append(home.leads_panel)
        post_migrate.connect(_search_index, sender=self, dispatch_uid="leads-search-index")


def _search_index(sender, using, **kwargs) -> None:
    """A migration that rebuilds leads_lead on SQLite drops the search triggers:
    put them back (and rebuild the index) after every migrate."""
    from django.db import connections

    from leads.search import ensure_sqlite_index

    ensure_sqlite_index(connections[using])
