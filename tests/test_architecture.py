"""The architecture is enforced, not hoped for (issue #14): the import contracts
in .importlinter hold, file import cycles are only the reviewed ones, and every
module of leadflow/ is placed in a layer (the roof or the ground floor)."""

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


def test_every_leadflow_module_is_in_a_layer():
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    layers = config["importlinter:contract:layers"]["layers"]
    named = set(re.split(r"[\s|:]+", layers.strip()))
    modules = {
        f"leadflow.{path.stem}"
        for path in (ROOT / "leadflow").glob("*.py")
        if path.stem != "__init__"
    } | {f"leadflow.{path.parent.name}" for path in (ROOT / "leadflow").glob("*/__init__.py")}
    assert modules - named == set(), "place these in the layers contract (.importlinter)"
