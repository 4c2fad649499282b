import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "leadflow" / "settings.py"


def env_example() -> dict[str, str]:
    pairs = re.findall(r"^([A-Z_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.M)
    return dict(pairs)


@pytest.fixture
def load_settings(monkeypatch, tmp_path):
    """Run leadflow/settings.py in-process against an environment of our making."""

    def load(**variables):
        for name in [*env_example(), "DJANGO_DEBUG"]:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("LEADFLOW_VAR_DIR", str(tmp_path))
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(SETTINGS))

    return load
