from django.apps import AppConfig


class NurtureConfig(AppConfig):
    name = "nurture"

    def ready(self) -> None:
        # One-way wiring on the hook registry (leadflow.core.hooks). Nurture comes last:
        # lists and sequences see the leads as scored, routed and staged.
        from leadflow.core import hooks
        from nurture import demo
        from nurture.services import hooks as subscribers

        hooks.post_ingest.register("nurture", after=("scoring", "pipeline"))(
            subscribers.after_ingest
        )
        hooks.mql_crossing.register("nurture", after=("pipeline",))(subscribers.after_mql_crossing)
        hooks.stage_changed.register("nurture", after=("pipeline",))(subscribers.after_stage_change)
        hooks.demo_steps.register("nurture", after=("leads", "scoring", "pipeline"))(demo.seed)
        # The lead list's "Add to list" bulk action (leads can't import nurture).
        from leads.bulk import register
        from nurture import bulk

        register(bulk.ADD_TO_LIST)
