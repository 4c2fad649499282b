from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and organizations"

    def ready(self) -> None:
        from accounts import checks  # noqa: F401 (registers the system checks)
        from accounts.switcher import connect
        from leadflow.core import db  # noqa: F401 (registers the bounded integer `in` lookup)

        connect()  # the top bar's cached organizations, forgotten when they change
