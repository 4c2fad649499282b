"""System checks (run at every start and by `manage.py check --deploy`)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security)
def check_email_verification(app_configs, **kwargs):
    """In production an unconfirmed address must not be trusted: anybody could
    sign up as someone else and act under their name."""
    if settings.DEBUG or settings.ACCOUNT_EMAIL_VERIFICATION == "mandatory":
        return []
    return [
        Warning(
            f"ACCOUNT_EMAIL_VERIFICATION is {settings.ACCOUNT_EMAIL_VERIFICATION!r} with "
            "DEBUG off: sign-ups can claim addresses they do not own.",
            hint="Set ACCOUNT_EMAIL_VERIFICATION=mandatory (the production default).",
            id="accounts.W001",
        )
    ]
