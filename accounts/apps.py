from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and organizations"

    def ready(self) -> None:
        from accounts import checks  # noqa: F401 (registers the system checks)
        from leadflow.core import db  # noqa: F401 (registers the bounded integer `in` lookup)
