"""Queue isolation, checked systematically: every task has a declared queue,
every periodic task runs on the beat queue, per-organization work is spread
over shards, and every worker this project starts consumes every queue."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from leadflow import queues
from leadflow.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
RESTRICTING = ("-Q", "--queues", "-X", "--exclude-queues")


def registered_tasks() -> list[str]:
    celery_app.loader.import_default_modules()
    return sorted(name for name in celery_app.tasks if not name.startswith("celery."))


def test_every_task_is_routed_to_a_declared_queue_on_purpose():
    declared = {q.name for q in settings.CELERY_TASK_QUEUES}
    names = registered_tasks()
    unlisted = [name for name in names if name not in queues.ROUTES]
    assert not unlisted, f"add these tasks to leadflow.queues.ROUTES: {unlisted}"
    for name in names:
        queue = celery_app.amqp.router.route({}, name, (), {"organization_id": 3})["queue"]
        assert queue.name in declared, (name, queue.name)


def test_periodic_tasks_and_their_fan_out_run_on_the_beat_queue():
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert queues.ROUTES[entry["task"]] == queues.BEAT, entry["task"]
    for child in ("nurture.dispatch_organization", "pipeline.sla_check_org"):
        assert queues.ROUTES[child] == queues.BEAT
    # Nothing that can build a backlog shares it.
    for name in ("leads.process_submission", "nurture.send_messages", "pipeline.deliver_webhook"):
        assert queues.ROUTES[name] != queues.BEAT


@pytest.mark.parametrize("task", ["leads.process_submission", "nurture.send_messages"])
def test_organizations_are_spread_over_shards_and_each_stays_in_its_own(task):
    shards = settings.CELERY_ORG_SHARDS
    assert shards >= 2
    route = celery_app.amqp.router.route
    by_org = {org: route({}, task, (), {"organization_id": org})["queue"].name for org in range(8)}
    assert len(set(by_org.values())) == shards
    assert by_org[1] != by_org[2]
    assert route({}, task, (), {"organization_id": 9})["queue"].name == by_org[9 % shards]


def worker_commands() -> dict[str, list[str]]:
    procfile = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if ":" in line
    )
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    commands = {"Procfile": shlex.split(procfile["worker"])}
    for name, service in compose.items():
        command = service.get("command") or []
        words = shlex.split(command) if isinstance(command, str) else [str(w) for w in command]
        if "worker" in words:
            commands[f"compose:{name}"] = words
    test_worker = (ROOT / "tests" / "workers.py").read_text()
    commands["tests/workers.py"] = [w for w in RESTRICTING if f'"{w}' in test_worker]
    return commands


def test_every_worker_started_here_consumes_every_queue():
    commands = worker_commands()
    assert {"Procfile", "compose:worker", "tests/workers.py"} <= set(commands)
    for where, words in commands.items():
        restricted = [w for w in words if w.split("=")[0] in RESTRICTING]
        assert not restricted, f"{where} limits the worker's queues: {restricted}"
    # Without -Q a worker consumes every declared queue, shards included.
    consumed = set(celery_app.amqp.queues)
    assert consumed == set(queues.queue_names(settings.CELERY_ORG_SHARDS))
    for name in registered_tasks():
        queue = celery_app.amqp.router.route({}, name, (), {"organization_id": 5})["queue"]
        assert queue.name in consumed
