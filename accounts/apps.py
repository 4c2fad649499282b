from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and organizations"

    def ready(self):
        from leadflow import db  # noqa: F401 (registers the bounded integer `in` lookup)
