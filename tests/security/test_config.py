"""Configuration robustness: `cp .env.example .env` just works, and a malformed
URL variable stops the process with one line that names it (never its value)."""

import subprocess
import sys

import pytest

from tests.security.conftest import ROOT, env_example


def test_env_example_as_is_gives_the_quick_start_defaults(load_settings, tmp_path):
    values = env_example()
    values["LEADFLOW_VAR_DIR"] = str(tmp_path)  # empty in the example: keep state out of the repo
    settings = load_settings(**values)
    assert settings["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert settings["DATABASES"]["default"]["NAME"] == str(tmp_path / "db.sqlite3")
    assert settings["REDIS_URL"] == ""
    assert settings["CELERY_BROKER_URL"] == "filesystem://"
    assert settings["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
    assert settings["SECRET_KEY"]  # the quick-start key, not ""
    assert settings["WEBHOOKS_ALLOW_PRIVATE"] is True  # empty = the default (= DEBUG)


@pytest.mark.parametrize(
    "name", ["DATABASE_URL", "REDIS_URL", "EMAIL_URL", "SITE_URL", "CONN_MAX_AGE"]
)
def test_an_empty_variable_means_its_default(load_settings, name):
    default = load_settings()
    settings = load_settings(**{name: ""})
    for key in ("DATABASES", "REDIS_URL", "EMAIL_BACKEND", "SITE_URL", "VAR_DIR"):
        assert settings[key] == default[key], key


def test_an_empty_var_dir_means_var_in_the_repository(load_settings):
    assert load_settings(LEADFLOW_VAR_DIR="")["VAR_DIR"] == ROOT / "var"


def test_an_empty_rate_limit_still_turns_the_limit_off(load_settings):
    assert load_settings(LEADS_CAPTURE_RATE_LIMIT="")["LEADS_CAPTURE_RATE_LIMIT"] == ""


def test_production_with_an_empty_secret_key_refuses(load_settings):
    with pytest.raises(SystemExit, match="DJANGO_SECRET_KEY"):
        load_settings(DJANGO_DEBUG="false", DJANGO_SECRET_KEY="", ALLOWED_HOSTS="x.example")


MALFORMED = [
    ("DATABASE_URL", "postgres://leadflow:s3cret-pw@db:notaport/leadflow"),
    ("DATABASE_URL", "db.example.com:5432/leadflow"),
    ("DATABASE_URL", "mysqlx://leadflow:s3cret-pw@db/leadflow"),
    ("DATABASE_URL", "postgres://leadflow:s3cret-pw@db:5432"),
    ("REDIS_URL", "localhost:6379"),
    ("REDIS_URL", "redis://:s3cret-pw@redis:port/0"),
    ("REDIS_URL", "http://redis:6379/0"),
    ("EMAIL_URL", "smtp+tls://mailer:s3cret-pw@smtp.example.com:tls"),
    ("EMAIL_URL", "smtp.example.com:587"),
    ("SITE_URL", "leads.example.com"),
    ("SITE_URL", "https://"),
]


@pytest.mark.parametrize(("name", "value"), MALFORMED)
def test_a_malformed_url_names_its_variable_and_hides_its_value(load_settings, name, value):
    with pytest.raises(SystemExit) as caught:
        load_settings(**{name: value})
    message = str(caught.value.code)
    assert message.startswith(f"Configuration error: {name} ")
    assert "\n" not in message
    assert "s3cret-pw" not in message


def _manage_check(**variables):
    env = {"PATH": "/usr/bin:/bin", "LEADFLOW_VAR_DIR": variables.pop("LEADFLOW_VAR_DIR")}
    env.update(variables)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_manage_py_with_the_env_example_runs(tmp_path):
    """What a newcomer does: every variable of .env.example present, most empty."""
    result = _manage_check(**{**env_example(), "LEADFLOW_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_manage_py_with_a_malformed_url_prints_one_line(tmp_path):
    result = _manage_check(
        LEADFLOW_VAR_DIR=str(tmp_path), DATABASE_URL="postgres://u:s3cret-pw@db:x/leadflow"
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Configuration error: DATABASE_URL is not a valid database URL (bad port); "
        "e.g. postgres://user:password@host:5432/leadflow or sqlite:///path/db.sqlite3."
    ]
