from django.apps import AppConfig


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
