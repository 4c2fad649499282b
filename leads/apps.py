from django.apps import AppConfig
from django.db.models.signals import post_migrate


class LeadsConfig(AppConfig):
    name = "leads"

    def ready(self) -> None:
        from leadflow.core import hooks
        from leads import controls, demo, home
        from leads.tasks import duplicates

        # The demo's leads come first: later steps score, route and enroll them.
        hooks.demo_steps.register("leads")(demo.seed)
        hooks.home_panels.register("leads")(home.leads_panel)
        # Last: it only enqueues the batch's duplicate refresh, run once it commits.
        hooks.post_ingest.register("leads", after=("nurture",))(duplicates.duplicates_after_ingest)
        controls.connect()  # the lead list's kept filter form and bulk bar
        post_migrate.connect(_search_index, sender=self, dispatch_uid="leads-search-index")


def _search_index(sender, using, **kwargs) -> None:
    """A migration that rebuilds leads_lead on SQLite drops the search triggers:
    put them back (and rebuild the index) after every migrate."""
    from django.db import connections

    from leads.search import ensure_sqlite_index

    ensure_sqlite_index(connections[using])
