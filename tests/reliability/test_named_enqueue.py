"""Services enqueue their tasks by registered name (so a service and its task
module don't import each other): every name written in the code is a task the
worker knows, and an unknown name fails in the service's own call."""

import re
from pathlib import Path

import pytest
from django.db import transaction

from leadflow.celery import app
from leadflow.core.tenancy import enqueue_on_commit

ROOT = Path(__file__).resolve().parents[2]
APPS = ("leadflow", "accounts", "leads", "scoring", "pipeline", "nurture", "reports", "privacy")
NAMED = re.compile(r'enqueue_on_commit\(\s*"([^"]+)"')


def named_enqueues() -> dict[str, str]:
    found = {}
    for package in APPS:
        for path in (ROOT / package).rglob("*.py"):
            for name in NAMED.findall(path.read_text(encoding="utf-8")):
                found[name] = str(path.relative_to(ROOT))
    return found


def test_every_task_enqueued_by_name_is_registered():
    found = named_enqueues()
    assert {"scoring.run_rescore_job", "accounts.tasks.send_invitation"} <= set(found)
    app.loader.import_default_modules()
    unknown = {name: where for name, where in found.items() if name not in app.tasks}
    assert not unknown, f"not a registered task: {unknown}"


@pytest.mark.django_db
def test_an_unknown_task_name_fails_at_the_call_not_at_commit():
    with transaction.atomic(), pytest.raises(KeyError):
        enqueue_on_commit("scoring.no_such_task", organization_id=1)
