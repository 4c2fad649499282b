"""Deployment and tooling files agree with each other and with the settings.

docker-compose.yml is checked against leadflow/settings.py (every variable the app
containers set must be one the settings read), and the Makefile / CI entry point are
checked to run the suite against real services through scripts/with_services.py.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SETTINGS_FILE = ROOT / "leadflow" / "settings.py"
MAKEFILE = ROOT / "Makefile"
CI_RUN = ROOT / ".ci" / "run"
PROCFILE = ROOT / "Procfile"
WITH_SERVICES = ROOT / "scripts" / "with_services.py"

WORKER_SERVICES = ("worker-capture", "worker-mail", "worker-bulk")
APP_SERVICES = ("web", *WORKER_SERVICES, "beat")
REQUIRED_SERVICES = (*APP_SERVICES, "db", "redis")

# django-environ methods that read a default variable when called without a name.
ENVIRON_DEFAULT_NAMES = {
    "DATABASE_URL": ("db", "db_url"),
    "EMAIL_URL": ("email", "email_url"),
    "CACHE_URL": ("cache", "cache_url"),
    "SEARCH_URL": ("search_url",),
}


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose():
    assert COMPOSE_FILE.is_file(), "docker-compose.yml is missing"
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose):
    return compose["services"]


@pytest.fixture(scope="module")
def settings_source():
    assert SETTINGS_FILE.is_file(), "leadflow/settings.py is missing"
    return SETTINGS_FILE.read_text()


def command_words(service: dict) -> list[str]:
    command = service.get("command")
    assert command, "service has no command"
    if isinstance(command, str):
        return shlex.split(command)
    return [str(word) for word in command]


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        env = {pair[0]: (pair[1] if len(pair) > 1 else "") for pair in pairs}
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def depends_on(service: dict) -> dict[str, dict]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):  # short form has no condition
        return {name: {} for name in deps}
    return deps


def settings_reads(source: str, name: str) -> bool:
    """Whether the settings source reads environment variable *name*."""
    quoted = rf"""['"]{re.escape(name)}['"]"""
    patterns = [
        # env("X"), env.str("X"), env.bool(var="X"), environ.Env().str("X", ...)
        rf"\benv(?:\(\))?(?:\.\w+)?\(\s*(?:var\s*=\s*)?{quoted}",
        rf"\bEnv\(\)\.\w+\(\s*(?:var\s*=\s*)?{quoted}",
        rf"\bos\.environ(?:\.get)?\s*[\[(]\s*{quoted}",
        rf"\bos\.getenv\(\s*{quoted}",
    ]
    patterns += [rf"\benv\.{method}\(\s*\)" for method in ENVIRON_DEFAULT_NAMES.get(name, ())]
    return any(re.search(pattern, source) for pattern in patterns)


def make_recipe(makefile: str, target: str) -> list[str]:
    """Recipe lines of *target* (make's tab-indented lines after `target:`)."""
    lines = makefile.splitlines()
    for index, line in enumerate(lines):
        if re.match(rf"^{re.escape(target)}\s*:(?!=)", line):
            recipe = []
            for follow in lines[index + 1 :]:
                if follow.startswith("\t"):
                    recipe.append(follow.strip())
                elif follow.strip() == "" or follow.lstrip().startswith("#"):
                    continue
                else:
                    break
            return recipe
    raise AssertionError(f"Makefile has no {target!r} target")


# --------------------------------------------------------------------------- compose


def test_the_five_services_exist(services):
    missing = [name for name in REQUIRED_SERVICES if name not in services]
    assert not missing, f"docker-compose.yml lacks services: {missing}"


def test_web_runs_gunicorn_with_leadflow_wsgi(services):
    words = command_words(services["web"])
    assert words[0] == "gunicorn" or "gunicorn" in words, words
    assert any(re.fullmatch(r"leadflow\.wsgi(:application)?", word) for word in words), words


def worker_argv(service: dict) -> list[str]:
    """The argv a worker service execs: its shell line run through sh with `celery`
    swapped for printf, so `$(python -m leadflow.core.queues …)` expands as in the
    container (compose turns `$$` into `$`)."""
    words = command_words(service)
    if words[:2] != ["sh", "-c"]:
        return words
    line = words[2].replace("$$", "$")
    assert line.startswith("exec celery "), line
    line = "exec printf '%s\\n' celery " + line.removeprefix("exec celery ")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        ["sh", "-c", line], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env
    )
    assert result.returncode == 0 and not result.stderr, result.stderr
    return result.stdout.splitlines()


def consumed_queues(argv: list[str]) -> set[str] | None:
    """The queues a `celery worker` argv consumes; None for all of them (no -Q)."""
    for index, word in enumerate(argv):
        if word in ("-Q", "--queues"):
            return set(argv[index + 1].split(","))
        if word.startswith("--queues="):
            return set(word.split("=", 1)[1].split(","))
    return None


@pytest.fixture(scope="module")
def worker_argvs(services):
    return {name: worker_argv(services[name]) for name in WORKER_SERVICES}


@pytest.mark.parametrize("name", WORKER_SERVICES)
def test_worker_runs_celery_worker(worker_argvs, name):
    assert " ".join(worker_argvs[name]).startswith("celery -A leadflow worker"), worker_argvs[name]


def test_every_queue_is_consumed_by_a_compose_worker(services, worker_argvs):
    from django.conf import settings

    workers = {
        name
        for name, service in services.items()
        if service.get("command") and "worker" in " ".join(command_words(service)).split()
    }
    assert workers == set(WORKER_SERVICES), workers
    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    consumed: dict[str, set[str]] = {}
    for name, argv in worker_argvs.items():
        queues = consumed_queues(argv)
        assert queues, f"{name} consumes every queue: give it its group's -Q"
        assert queues <= declared, (name, sorted(queues - declared))
        consumed[name] = queues
    missing = declared - set().union(*consumed.values())
    assert not missing, f"no compose worker consumes {sorted(missing)}"
    # Long jobs and the work visitors and SLAs wait on never share a worker.
    bulk = {"scoring", "imports", "reports"}
    assert bulk <= consumed["worker-bulk"]
    for name in ("worker-capture", "worker-mail"):
        assert not bulk & consumed[name], name
    assert {"capture.0", "beat"} <= consumed["worker-capture"]
    assert {"mail.0", "webhooks.0"} <= consumed["worker-mail"]


def test_consumed_queues_reads_the_q_option():
    assert consumed_queues(["celery", "worker", "-Q", "a,b"]) == {"a", "b"}
    assert consumed_queues(["celery", "worker", "--queues=a"]) == {"a"}
    assert consumed_queues(["celery", "worker", "--loglevel=INFO"]) is None


def test_beat_runs_celery_beat(services):
    assert " ".join(command_words(services["beat"])).startswith("celery -A leadflow beat")


@pytest.mark.parametrize("name", ["db", "redis", "web"])
def test_healthchecks(services, name):
    check = services[name].get("healthcheck") or {}
    test = check.get("test")
    assert test and not check.get("disable"), f"{name} has no healthcheck"


def test_db_and_redis_healthchecks_use_their_tools(services):
    assert "pg_isready" in str(services["db"]["healthcheck"]["test"])
    assert "redis-cli" in str(services["redis"]["healthcheck"]["test"])
    assert "ping" in str(services["redis"]["healthcheck"]["test"])


def test_db_keeps_its_data_in_a_named_volume(compose, services):
    volumes = [str(volume) for volume in services["db"].get("volumes", [])]
    named = [v.split(":", 1)[0] for v in volumes if not v.startswith((".", "/", "~"))]
    assert named, "db has no named volume"
    assert all(name in (compose.get("volumes") or {}) for name in named)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_healthy_db_and_redis(services, name):
    deps = depends_on(services[name])
    for dependency in ("db", "redis"):
        assert dependency in deps, f"{name} does not depend on {dependency}"
        assert deps[dependency].get("condition") == "service_healthy", (name, dependency)


def test_migrations_run_before_the_app(services):
    web = services["web"]
    web_migrates = "migrate" in " ".join(command_words(web))
    one_shot = [
        name
        for name, service in services.items()
        if "migrate" in " ".join(command_words(service) if service.get("command") else [])
        and name not in APP_SERVICES
    ]
    if not web_migrates:
        assert one_shot, "nothing runs manage.py migrate"
        for name in APP_SERVICES:
            condition = depends_on(services[name]).get(one_shot[0], {}).get("condition")
            assert condition == "service_completed_successfully", name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_set_the_required_variables(services, name):
    env = environment(services[name])
    required = {
        "DATABASE_URL",
        "REDIS_URL",
        "DJANGO_SECRET_KEY",
        "DJANGO_DEBUG",
        "ALLOWED_HOSTS",
        "EMAIL_URL",
    }
    assert required <= env.keys(), f"{name} lacks {sorted(required - env.keys())}"
    assert env["DJANGO_DEBUG"].lower() in ("false", "0", "no", "off")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_app_variable_is_read_by_the_settings(services, settings_source, name):
    env = environment(services[name])
    unread = [var for var in env if not settings_reads(settings_source, var)]
    assert not unread, f"{name} sets variables leadflow/settings.py never reads: {unread}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_service_urls_point_at_the_compose_services(services, name):
    env = environment(services[name])
    database = urlsplit(env["DATABASE_URL"])
    assert database.scheme in ("postgres", "postgresql", "pgsql"), env["DATABASE_URL"]
    assert database.hostname == "db", env["DATABASE_URL"]
    redis = urlsplit(env["REDIS_URL"])
    assert redis.scheme == "redis", env["REDIS_URL"]
    assert redis.hostname == "redis", env["REDIS_URL"]


def test_database_url_matches_the_db_service(services):
    db_env = environment(services["db"])
    url = urlsplit(environment(services["web"])["DATABASE_URL"])
    assert url.username == db_env.get("POSTGRES_USER", "postgres")
    assert url.path.lstrip("/") == db_env.get("POSTGRES_DB", db_env.get("POSTGRES_USER"))


def test_settings_reader_is_not_fooled():
    source = 'X = env.str("DJANGO_DEBUG_TOOLBAR")\n# DATABASE_URL\nY = env.db()\n'
    assert not settings_reads(source, "DJANGO_DEBUG")
    assert settings_reads(source, "DATABASE_URL")
    assert not settings_reads(source, "REDIS_URL")
    assert settings_reads('A = env.list("ALLOWED_HOSTS", default=[])', "ALLOWED_HOSTS")


# --------------------------------------------------------------------------- tooling


def test_make_test_runs_pytest_under_with_services():
    recipe = make_recipe(MAKEFILE.read_text(), "test")
    runs = [line for line in recipe if "scripts/with_services.py" in line]
    assert runs, f"`make test` does not use scripts/with_services.py: {recipe}"
    words = shlex.split(runs[0].replace("$(", "").replace(")", ""))
    assert "--" in words
    assert any(word.endswith("pytest") for word in words[words.index("--") + 1 :]), runs[0]
    assert not any("|| true" in line or line.startswith("-") for line in recipe), recipe


def test_ci_runs_make_test():
    text = CI_RUN.read_text()
    assert text.startswith("#!") and "bash" in text.splitlines()[0]
    assert "set -euo pipefail" in text
    commands = [line.strip() for line in text.splitlines() if not line.strip().startswith("#")]
    assert "make test" in commands, commands
    assert any("scripts/ensure_system_deps.sh" in line for line in commands)


def test_procfile_runs_web_and_worker_with_beat():
    entries = dict(line.split(":", 1) for line in PROCFILE.read_text().splitlines() if ":" in line)
    assert "manage.py runserver 127.0.0.1:8000" in entries["web"]
    assert "celery -A leadflow worker" in entries["worker"] and "--beat" in entries["worker"]


def test_with_services_without_a_command_is_a_usage_error():
    result = subprocess.run(
        [sys.executable, str(WITH_SERVICES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "usage" in result.stderr


@pytest.mark.integration
def test_with_services_provides_postgres_and_redis_and_passes_the_exit_code():
    probe = (
        "import os, socket, sys\n"
        "from urllib.parse import urlsplit\n"
        "db, redis = urlsplit(os.environ['DATABASE_URL']), urlsplit(os.environ['REDIS_URL'])\n"
        "assert (db.scheme, db.hostname, db.path) == ('postgres', '127.0.0.1', '/leadflow')\n"
        "socket.create_connection((db.hostname, db.port), timeout=5).close()\n"
        "s = socket.create_connection((redis.hostname, redis.port), timeout=5)\n"
        "s.sendall(b'PING\\r\\n')\n"
        "assert s.recv(16).startswith(b'+PONG')\n"
        "sys.exit(7)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, str(WITH_SERVICES), "--", sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 7, result.stdout + result.stderr
    assert "PostgreSQL" in result.stderr and "Redis" in result.stderr
