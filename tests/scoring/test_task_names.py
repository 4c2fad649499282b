"""Scoring's Celery tasks carry explicit names, as the other apps' do, and the
names Celery derived before the rename stay registered for one release so
messages queued by the previous release still run, on the same queue."""

from __future__ import annotations

import pytest
from django.conf import settings

from leadflow.celery import app as celery_app
from leadflow.core import queues
from leadflow.core.tenancy import TenantTask
from scoring import tasks

RENAMED = (
    "nightly_decay",
    "retrain_due",
    "send_drift_notice",
    "run_rescore_job",
    "run_learning_job",
)


@pytest.mark.parametrize("function", RENAMED)
def test_scoring_tasks_are_named_explicitly_and_keep_their_old_name(function):
    celery_app.loader.import_default_modules()
    task = getattr(tasks, function)
    assert task.name == f"scoring.{function}"
    legacy = celery_app.tasks[f"scoring.tasks.{function}"]
    assert legacy.run.__code__ is task.run.__code__
    options = ("acks_late", "time_limit", "max_retries", "autoretry_for", "typing")
    assert [getattr(legacy, o, None) for o in options] == [getattr(task, o, None) for o in options]
    assert isinstance(legacy, TenantTask) == isinstance(task, TenantTask)
    assert queues.ROUTES[legacy.name] == queues.ROUTES[task.name]


def test_the_beat_schedule_uses_the_explicit_names():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"scoring.nightly_decay", "scoring.retrain_due"} <= scheduled
    assert not {name for name in scheduled if name.startswith("scoring.tasks.")}
