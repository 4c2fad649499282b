"""Queue isolation, checked systematically: every task has a declared queue,
every periodic task runs on the beat queue, per-organization work is spread
over shards, the worker groups cover every queue once, and the quick start's
one worker consumes every queue."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from django.conf import settings

from leadflow.celery import app as celery_app
from leadflow.core import queues

ROOT = Path(__file__).resolve().parents[2]
RESTRICTING = ("-Q", "--queues", "-X", "--exclude-queues")


def registered_tasks() -> list[str]:
    celery_app.loader.import_default_modules()
    return sorted(name for name in celery_app.tasks if not name.startswith("celery."))


def test_every_task_is_routed_to_a_declared_queue_on_purpose():
    declared = {q.name for q in settings.CELERY_TASK_QUEUES}
    names = registered_tasks()
    unlisted = [name for name in names if name not in queues.ROUTES]
    assert not unlisted, f"add these tasks to leadflow.core.queues.ROUTES: {unlisted}"
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
    commands = {"Procfile": shlex.split(procfile["worker"])}
    test_worker = (ROOT / "tests" / "workers.py").read_text()
    # The test helper restricts queues only when a test asks for a group.
    default_call = test_worker.split("def celery_worker(", 1)[1].split("def ", 1)[0]
    commands["tests/workers.py"] = [w for w in RESTRICTING if f'"{w}"' in default_call]
    return commands


def test_the_quick_start_and_test_workers_consume_every_queue():
    """`make run` keeps one worker for everything (docker-compose's per-group
    workers are checked in tests/test_compose.py)."""
    commands = worker_commands()
    assert {"Procfile", "tests/workers.py"} <= set(commands)
    for where, words in commands.items():
        restricted = [w for w in words if w.split("=")[0] in RESTRICTING]
        assert not restricted, f"{where} limits the worker's queues: {restricted}"
    # Without -Q a worker consumes every declared queue, shards included.
    consumed = set(celery_app.amqp.queues)
    assert consumed == set(queues.queue_names(settings.CELERY_ORG_SHARDS))
    for name in registered_tasks():
        queue = celery_app.amqp.router.route({}, name, (), {"organization_id": 5})["queue"]
        assert queue.name in consumed


def test_worker_groups_cover_every_queue_exactly_once():
    shards = settings.CELERY_ORG_SHARDS
    grouped = [name for group in queues.GROUPS for name in queues.group_queues(group, shards)]
    assert sorted(grouped) == sorted(queues.queue_names(shards))
    # Long jobs never share a group with capture or mail.
    long_jobs = {queues.SCORING, queues.IMPORTS, queues.REPORTS}
    for group in ("capture", "mail"):
        assert not long_jobs & set(queues.GROUPS[group]), group


def test_the_group_command_prints_the_q_list(capsys):
    assert queues.main(["capture"]) == 0
    printed = capsys.readouterr().out.strip().split(",")
    assert printed == queues.group_queues("capture", settings.CELERY_ORG_SHARDS)
    assert queues.main(["nope"]) == 2


def test_a_long_task_holds_no_prefetched_messages():
    """acks_late with a prefetch of one: a worker busy with a rescore has reserved
    nothing else, so capture messages wait in Redis for a free worker."""
    assert celery_app.conf.worker_prefetch_multiplier == 1
    assert celery_app.conf.task_acks_late is True
    assert celery_app.conf.task_reject_on_worker_lost is True
