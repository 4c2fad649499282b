from django.apps import AppConfig


class NurtureConfig(AppConfig):
    name = "nurture"

    def ready(self) -> None:
        # Explicit wiring of the one-way hooks (see DESIGN: lower apps expose hook lists).
        from accounts.management.commands.seed_demo import demo_steps
        from leads.services.ingest import post_ingest_hooks
        from nurture import demo
        from nurture.services import hooks
        from pipeline.hooks import stage_changed_hooks
        from scoring.engine import mql_crossing_hooks

        for hook_list, hook in (
            (post_ingest_hooks, hooks.after_ingest),
            (mql_crossing_hooks, hooks.after_mql_crossing),
            (stage_changed_hooks, hooks.after_stage_change),
            (demo_steps, demo.seed),
        ):
            if hook not in hook_list:
                hook_list.append(hook)
