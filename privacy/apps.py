from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "privacy"

    def ready(self) -> None:
        from leadflow.core import hooks
        from privacy import panels

        hooks.lead_detail_panels.register("privacy", after=("scoring", "pipeline"))(
            panels.privacy_panel
        )
