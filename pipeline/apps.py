from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "pipeline"

    def ready(self) -> None:
        # One-way wiring on the hook registry (leadflow.core.hooks).
        from leadflow.core import hooks
        from leads.bulk import register
        from pipeline import demo, panels
        from pipeline.services import deal_stages, merges, mql, outcomes, webhooks

        hooks.organization_created.register("pipeline", after=("scoring",))(
            deal_stages.install_default_stages_for
        )
        hooks.mql_crossing.register("pipeline")(mql.mql_after_rescore)
        # Product usage is judged on the rows scoring has just rescored.
        hooks.post_ingest.register("pipeline", after=("scoring",))(mql.pql_after_ingest)
        hooks.lead_detail_panels.register("pipeline", after=("scoring",))(panels.pipeline_panel)
        hooks.role_home.register("pipeline")(panels.rep_queue_home)
        hooks.demo_steps.register("pipeline", after=("leads", "scoring"))(demo.seed)
        register(*outcomes.bulk_outcome_actions())
        hooks.import_outcome.register("pipeline")(outcomes.outcomes_after_import)
        hooks.stage_changed.register("pipeline")(webhooks.webhooks_on_stage_changed)
        hooks.lead_created.register("pipeline")(webhooks.webhooks_on_lead_created)
        hooks.lead_updated.register("pipeline")(webhooks.webhooks_on_lead_updated)
        hooks.lead_deleted.register("pipeline")(webhooks.webhooks_on_lead_deleted)
        # Stage and queue first: the rescore that follows may cross the threshold.
        hooks.lead_merged.register("pipeline")(merges.pipeline_after_merge)
        hooks.lead_unmerged.register("pipeline")(merges.pipeline_after_unmerge)
