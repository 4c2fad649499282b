from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"

    def ready(self) -> None:
        # Explicit wiring of the one-way hooks (see DESIGN: lower apps expose hook lists).
        from django.db.backends.signals import connection_created

        from accounts.management.commands.seed_demo import demo_steps
        from accounts.services import organization_created_hooks
        from leadflow.core.db import sqlite_unicode_lower
        from leads.panels import lead_detail_panels
        from leads.services.ingest import post_ingest_hooks
        from scoring import demo, panels, services

        connection_created.connect(sqlite_unicode_lower, dispatch_uid="sqlite_unicode_lower")

        if services.rescore_after_ingest not in post_ingest_hooks:
            post_ingest_hooks.append(services.rescore_after_ingest)
        if services.install_starter_rules_for not in organization_created_hooks:
            organization_created_hooks.append(services.install_starter_rules_for)
        if panels.score_panel not in lead_detail_panels:
            lead_detail_panels.append(panels.score_panel)
        if demo.seed not in demo_steps:
            demo_steps.append(demo.seed)
