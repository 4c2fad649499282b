from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "pipeline"

    def ready(self) -> None:
        # Explicit one-way wiring into the lower apps' hook lists (see DESIGN).
        from accounts.management.commands.seed_demo import demo_steps
        from accounts.models import Role
        from accounts.panels import role_home
        from leads.bulk import bulk_actions
        from leads.panels import lead_detail_panels
        from leads.services.ingest import post_ingest_hooks
        from leads.services.outcomes import import_outcome_hooks
        from pipeline import demo, panels
        from pipeline.hooks import stage_changed_hooks
        from pipeline.services import mql, outcomes, webhooks
        from scoring.engine import mql_crossing_hooks

        if mql.mql_after_rescore not in mql_crossing_hooks:
            mql_crossing_hooks.append(mql.mql_after_rescore)
        # After scoring's rescore hook: product usage is judged on the fresh rows.
        if mql.pql_after_ingest not in post_ingest_hooks:
            post_ingest_hooks.append(mql.pql_after_ingest)
        if panels.pipeline_panel not in lead_detail_panels:
            lead_detail_panels.append(panels.pipeline_panel)
        # The rep queue is the sales rep's home page.
        role_home.setdefault(Role.SALES_REP, "pipeline:queue")
        if demo.seed not in demo_steps:
            demo_steps.append(demo.seed)
        if not any(a.key == "mark_won" for a in bulk_actions):
            bulk_actions.extend(outcomes.bulk_outcome_actions())
        if outcomes.outcomes_after_import not in import_outcome_hooks:
            import_outcome_hooks.append(outcomes.outcomes_after_import)
        if webhooks.webhooks_on_stage_changed not in stage_changed_hooks:
            stage_changed_hooks.append(webhooks.webhooks_on_stage_changed)
