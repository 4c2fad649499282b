from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"

    def ready(self) -> None:
        # One-way wiring on the hook registry (leadflow.core.hooks; order declared there).
        from django.db.backends.signals import connection_created

        from leadflow.core import hooks
        from leadflow.core.db import sqlite_unicode_lower
        from scoring import demo, engine, panels, rescoring, services

        connection_created.connect(sqlite_unicode_lower, dispatch_uid="sqlite_unicode_lower")

        hooks.organization_created.register("scoring")(services.install_starter_rules_for)
        hooks.post_ingest.register("scoring")(rescoring.rescore_after_ingest)
        hooks.new_lead_scores.register("scoring")(engine.new_lead_scores)
        # A merged lead's history changed: its score is recomputed (after the
        # pipeline kept its stage, so a crossing routes from the right place).
        hooks.lead_merged.register("scoring", after=("pipeline",))(rescoring.rescore_after_merge)
        hooks.lead_unmerged.register("scoring", after=("pipeline",))(
            rescoring.rescore_after_unmerge
        )
        hooks.lead_detail_panels.register("scoring")(panels.score_panel)
        hooks.demo_steps.register("scoring", after=("leads",))(demo.seed)
