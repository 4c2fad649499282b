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
