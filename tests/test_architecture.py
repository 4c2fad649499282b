"""The architecture is enforced, not hoped for (issue #14): the import contracts
in .importlinter hold, file import cycles are only the reviewed ones, and every
module of leadflow/ is placed in a layer (the roof, or the ground floor:
leadflow.core)."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_import_contracts_are_kept():
    result = _run(str(Path(sys.executable).parent / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_import_cycles_between_files_beyond_the_reviewed_ones():
    result = _run(sys.executable, str(ROOT / "scripts" / "check_cycles.py"))
    assert result.returncode == 0, result.stdout + result.stderr


def _layers() -> list[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    return config["importlinter:contract:layers"]["layers"].strip().splitlines()


def test_every_leadflow_module_is_in_a_layer():
    layers = "\n".join(_layers())
    named = set(re.split(r"[\s|:]+", layers.strip()))
    modules = {
        f"leadflow.{path.stem}"
        for path in (ROOT / "leadflow").glob("*.py")
        if path.stem != "__init__"
    } | {f"leadflow.{path.parent.name}" for path in (ROOT / "leadflow").glob("*/__init__.py")}
    assert modules - named == set(), "place these in the layers contract (.importlinter)"


def test_the_ground_floor_is_leadflow_core():
    # A new app-free helper goes into leadflow/core/, not beside the roof's modules.
    ground = set(re.split(r"[\s|:]+", _layers()[-1].strip()))
    assert ground == {"leadflow.core", "leadflow.celery"}


# --- types (mypy with django-stubs, in `make lint`) -----------------------------------


def _mypy_files() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["tool"]["mypy"]["files"]


def _typed(path: Path, files: list[str]) -> bool:
    relative = path.relative_to(ROOT).as_posix()
    return any(relative == f.rstrip("/") or relative.startswith(f.rstrip("/") + "/") for f in files)


def test_every_apps_services_and_selectors_are_type_checked():
    # Services (writes) and selectors (reads) are the typed surface: a new app, or
    # a new services/selectors module beside the old ones, must be listed for mypy.
    files = _mypy_files()
    apps = sorted(path.parent for path in ROOT.glob("*/apps.py"))
    assert [app.name for app in apps][:2] == ["accounts", "leads"]  # the walk finds the apps
    surface = [ROOT / "leadflow" / "core"] + [
        path
        for app in apps
        for path in sorted(app.iterdir())
        if path.name.startswith(("services", "selectors"))
        and (path.suffix == ".py" or (path / "__init__.py").exists())
    ]
    assert len(surface) > len(apps)
    untyped = [p.relative_to(ROOT).as_posix() for p in surface if not _typed(p, files)]
    assert untyped == [], "add these to [tool.mypy] files in pyproject.toml"


def test_make_lint_and_pre_commit_run_mypy():
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    steps = [line.strip() for line in lint.splitlines()[1:]]
    mypy = "env -u DATABASE_URL -u REDIS_URL $(BIN)/mypy"
    assert mypy in steps and steps.index(mypy) > steps.index("$(BIN)/ruff format --check .")
    hooks = (ROOT / ".pre-commit-config.yaml").read_text()
    assert "entry: env -u DATABASE_URL -u REDIS_URL .venv/bin/mypy\n" in hooks
