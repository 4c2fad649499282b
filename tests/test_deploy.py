"""`manage.py check --deploy` passes with production-like settings, and
production refuses to start without its secrets."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROD_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "x" * 20 + "-prod-like-secret-" + "y9Z!k2#Qw8" * 4,
    "ALLOWED_HOSTS": "leads.example.com",
    "DATABASE_URL": "postgres://leadflow:pw@db:5432/leadflow",
    "REDIS_URL": "redis://redis:6379/0",
    "EMAIL_URL": "smtp+tls://mailer:pw@smtp.example.com:587",
}


def _manage(*args, env_overrides):
    # Test-only switches (the browser tests allow async-unsafe ORM calls) must not leak in.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in PROD_ENV and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=PROD_ENV)
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_without_secret_key_refuses_to_start():
    env = dict(PROD_ENV)
    del env["DJANGO_SECRET_KEY"]
    result = _manage("check", env_overrides=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_env_example_lists_every_variable_the_settings_read():
    import re

    source = (ROOT / "leadflow" / "settings.py").read_text()
    pattern = r'[eE]nv(?:\(\))?\.(?:str|bool|int|float|list|db|email_url|url_str)\(\s*"([A-Z_]+)"'
    read = set(re.findall(pattern, source))
    listed = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "EMAIL_URL"} <= read
    assert read == listed
