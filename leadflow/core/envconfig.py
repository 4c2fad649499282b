"""Reading settings from the environment without surprises.

Two rules on top of django-environ:

- An empty value means "not set": ``DATABASE_URL=`` (what ``cp .env.example
  .env`` gives) uses the default, and a required variable left empty is as
  missing as one never set.
- A variable that is missing or malformed stops the process with one line
  that names it (``DATABASE_URL: ...``), not a traceback from deep inside
  Django. The value itself is not echoed: URLs carry passwords.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured


class ConfigError(SystemExit):
    """A configuration mistake. Uncaught, Python prints its one-line message
    to stderr and exits with status 1 — from manage.py, gunicorn or celery."""

    def __init__(self, var: str, problem: str):
        self.var = var
        super().__init__(f"Configuration error: {var} {problem}")


REDIS_SCHEMES = ("redis", "rediss", "unix")
HTTP_SCHEMES = ("http", "https")


class Env(environ.Env):
    """django-environ's Env where empty means unset and bad URLs name their variable.

    ``keep_empty`` lists the variables for which an empty value is meaningful
    (e.g. an empty rate limit turns the limit off).
    """

    def __init__(self, *, keep_empty: frozenset[str] = frozenset(), **scheme):
        super().__init__(**scheme)
        self.keep_empty = keep_empty

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        if var not in self.keep_empty and self.ENVIRON.get(var, None) == "":
            if default is self.NOTSET:
                raise ConfigError(var, "is required (it is set but empty).")
            return self.parse_value(default, cast) if parse_default else default
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except ImproperlyConfigured as exc:
            raise ConfigError(var, "is required: set it in the environment or .env.") from exc
        except ValueError as exc:
            raise ConfigError(var, f"has an invalid value ({_reason(exc)}).") from exc

    def db_url(self, var=environ.Env.DEFAULT_DATABASE_ENV, default=environ.Env.NOTSET, engine=None):
        url = self.get_value(var, default=default)
        example = "e.g. postgres://user:password@host:5432/leadflow or sqlite:///path/db.sqlite3"
        try:
            config = self.db_url_config(url, engine=engine)
        except (ValueError, ImproperlyConfigured) as exc:
            raise ConfigError(
                var, f"is not a valid database URL ({_reason(exc)}); {example}."
            ) from None
        scheme = urlsplit(url).scheme
        if not config.get("ENGINE") or scheme not in self.DB_SCHEMES:
            raise ConfigError(var, f"is not a valid database URL (unknown scheme); {example}.")
        if not config.get("NAME") and not config["ENGINE"].endswith("sqlite3"):
            raise ConfigError(var, f"is not a valid database URL (no database name); {example}.")
        return config

    db = db_url

    def email_url(
        self, var=environ.Env.DEFAULT_EMAIL_ENV, default=environ.Env.NOTSET, backend=None
    ):
        url = self.get_value(var, default=default)
        example = "e.g. smtp+tls://user:password@smtp.example.com:587"
        try:
            return self.email_url_config(url, backend=backend)
        except (ValueError, ImproperlyConfigured) as exc:
            raise ConfigError(
                var, f"is not a valid email URL ({_reason(exc)}); {example}."
            ) from None

    email = email_url

    def url_str(self, var: str, *, default=environ.Env.NOTSET, schemes: tuple[str, ...]) -> str:
        """A URL kept as a string (REDIS_URL, SITE_URL), checked for scheme, host and port."""
        url = self.get_value(var, default=default)
        if not url:
            return url
        listed = " or ".join(f"{s}://" for s in schemes)
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (raises ValueError on a non-numeric or out-of-range port)
        except ValueError as exc:
            raise ConfigError(var, f"is not a valid URL ({_reason(exc)}).") from exc
        if parts.scheme not in schemes:
            raise ConfigError(var, f"is not a valid URL: it must start with {listed}.")
        if parts.scheme != "unix" and not parts.hostname:
            raise ConfigError(var, "is not a valid URL: it names no host.")
        return url


def _reason(exc: Exception) -> str:
    # Never the value itself: it may hold a password.
    text = str(exc)
    if "Port could not be cast" in text or "Port out of range" in text or "port" in text.lower():
        return "bad port"
    if "schema" in text.lower() or "scheme" in text.lower():
        return "unknown scheme"
    return type(exc).__name__
