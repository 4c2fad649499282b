"""Which Celery queue each task goes to, so work never waits behind other work.

- beat: the periodic triggers and their cheap per-organization jobs (nurture
  dispatch, SLA checks, sweeps). A capture or mail backlog never delays them;
  each run is a complete, idempotent pass, so one that expires is simply done
  by the next.
- capture, mail, webhooks: split into CELERY_ORG_SHARDS queues by organization
  (capture.0, capture.1, …). A worker consumes all its queues round-robin
  (kombu rotates the queue order after every message it takes), so one
  tenant's 10,000 submissions hold one shard and another tenant's 10 in another
  shard are taken in turn with them, not after them. Two tenants in the same
  shard still share it (organization id modulo the shard count).
- scoring, reports, imports: long jobs kept off the other queues.
- default: anything not listed (a test guards that every task is listed).

Workers run in groups (GROUPS) so that long jobs never hold the workers that
visitors and SLAs wait on: docker-compose runs one worker per group, each
started with `-Q $(python -m leadflow.core.queues <group>)` so its list is derived
from this module and cannot drift; `make run` and the tests' default worker run
without -Q and consume every queue declared in settings (CELERY_TASK_QUEUES).
"""

from __future__ import annotations

import logging
from typing import Any

from kombu import Queue

log = logging.getLogger(__name__)

BEAT = "beat"
CAPTURE = "capture"
SCORING = "scoring"
MAIL = "mail"
WEBHOOKS = "webhooks"
REPORTS = "reports"
IMPORTS = "imports"
DEFAULT = "default"

SHARDED = (CAPTURE, MAIL, WEBHOOKS)
PLAIN = (BEAT, SCORING, REPORTS, IMPORTS, DEFAULT)

# Worker groups: which queues each kind of worker consumes (docker-compose runs
# one worker service per group, on as many machines as needed).
# - capture: hosted-form and API submissions (scored and routed inline) and the
#   cheap periodic passes (SLA checks, nurture dispatch, sweeps);
# - mail: nurture sends, SLA notices, invitations, digests, webhooks;
# - bulk: tenant rescores, learning, imports, report rollups, the rest.
GROUPS: dict[str, tuple[str, ...]] = {
    "capture": (CAPTURE, BEAT),
    "mail": (MAIL, WEBHOOKS),
    "bulk": (SCORING, IMPORTS, REPORTS, DEFAULT),
}

ROUTES: dict[str, str] = {
    # Periodic triggers (beat) and the per-organization jobs they fan out.
    "nurture.dispatch_all": BEAT,
    "nurture.dispatch_organization": BEAT,
    "nurture.refresh_dynamic_lists_all": BEAT,
    "pipeline.sla_sweep": BEAT,
    "pipeline.sla_check_org": BEAT,
    "pipeline.follow_ups_remind_sweep": BEAT,
    "pipeline.follow_ups_remind_org": BEAT,
    "pipeline.notification_digests": BEAT,
    "leads.sweep_unprocessed_submissions": BEAT,
    "leads.sweep_stale_imports": BEAT,
    "accounts.purge_idempotency_keys": BEAT,
    "leads.resume_stalled_imports": BEAT,
    "leads.sweep_duplicates_all": BEAT,
    "scoring.nightly_decay": BEAT,
    "scoring.retrain_due": BEAT,
    "reports.send_weekly_digests": BEAT,
    "reports.refresh_all_rollups": BEAT,
    "privacy.retention_purge_all": BEAT,
    # Capture: submissions from forms and the API, and the per-org sweep.
    "leads.process_submission": CAPTURE,
    "leads.process_submissions": CAPTURE,
    "leads.sweep_organization_submissions": CAPTURE,
    # Mail: nurture sends, SLA notices, invitations, digests.
    "nurture.send_messages": MAIL,
    "nurture.send_sender_verification": MAIL,
    "nurture.send_direct_email": MAIL,
    "pipeline.send_notification_emails": MAIL,
    "pipeline.notification_digests_org": MAIL,
    "accounts.tasks.send_invitation": MAIL,
    "leads.send_consent_confirmation": MAIL,
    "reports.send_org_digests": MAIL,
    "scoring.send_drift_notice": MAIL,
    # Webhooks: one slow endpoint holds up only its own deliveries.
    "pipeline.webhook_dispatch": WEBHOOKS,
    "pipeline.deliver_webhook": WEBHOOKS,
    # Long jobs.
    "scoring.run_rescore_job": SCORING,
    "scoring.run_learning_job": SCORING,
    "scoring.retrain_organization": SCORING,
    "reports.refresh_rollups": REPORTS,
    "leads.tasks.imports.import_job_run": IMPORTS,
    "leads.export_job_run": IMPORTS,
    "leads.refresh_duplicates": IMPORTS,
    "leads.drain_duplicates": IMPORTS,
    "leads.rebuild_duplicates": IMPORTS,
    "leads.sweep_duplicates": IMPORTS,
    "nurture.refresh_organization_lists": DEFAULT,
    "privacy.retention_purge": DEFAULT,
}

# Names renamed in 2026-12, still registered as aliases (see scoring.tasks._task)
# so messages queued under them by the previous release run where they did.
# Remove together with the aliases.
LEGACY_ROUTES: dict[str, str] = {
    f"scoring.tasks.{name}": ROUTES[f"scoring.{name}"]
    for name in (
        "nightly_decay",
        "retrain_due",
        "send_drift_notice",
        "run_rescore_job",
        "run_learning_job",
    )
}
ROUTES.update(LEGACY_ROUTES)


def shard_names(queue: str, shards: int) -> list[str]:
    return [f"{queue}.{n}" for n in range(shards)]


def queue_names(shards: int) -> list[str]:
    """Every queue a worker consumes (the order is only the starting point of
    the round-robin)."""
    names = list(PLAIN)
    for queue in SHARDED:
        names += shard_names(queue, shards)
    return names


def group_queues(group: str, shards: int) -> list[str]:
    """The queues a worker of *group* consumes, shards spelled out."""
    names: list[str] = []
    for queue in GROUPS[group]:
        names += shard_names(queue, shards) if queue in SHARDED else [queue]
    return names


def celery_queues(shards: int) -> tuple[Queue, ...]:
    return tuple(Queue(name, routing_key=name) for name in queue_names(shards))


def queue_for(name: str, kwargs: dict | None, shards: int) -> str:
    queue = ROUTES.get(name, DEFAULT)
    organization_id = (kwargs or {}).get("organization_id")
    if queue in SHARDED:
        return shard_for(queue, organization_id, shards)
    return queue


def route_task(name: str, args: Any, kwargs: dict | None, options: dict, task=None, **kw):
    """Celery router (CELERY_TASK_ROUTES)."""
    from django.conf import settings

    queue = queue_for(name, kwargs, settings.CELERY_ORG_SHARDS)
    return {"queue": queue, "routing_key": queue}


def queue_depths(names: list[str]) -> dict[str, int | None]:
    """How many messages wait in each queue of the broker, over one connection:
    None for a queue when the broker cannot tell (unreachable, or a transport
    without message counts). A queue that was never declared, or that Redis
    dropped because it emptied, holds 0."""
    from kombu.exceptions import ChannelError

    from leadflow.celery import app

    depths: dict[str, int | None] = dict.fromkeys(names)
    try:
        with app.connection_for_read() as conn:
            channel = conn.default_channel
            for name in names:
                try:
                    depths[name] = channel.queue_declare(queue=name, passive=True).message_count
                except ChannelError:
                    depths[name] = 0
    except Exception:  # the broker is unreachable: the caller decides without it
        log.warning("Could not read the broker's queue depths", exc_info=True)
    return depths


def shard_for(queue: str, organization_id: int | None, shards: int | None = None) -> str:
    """An organization's shard of a sharded queue ("capture.3")."""
    if shards is None:
        from django.conf import settings

        shards = settings.CELERY_ORG_SHARDS
    return f"{queue}.{int(organization_id or 0) % shards}"


def main(argv: list[str] | None = None) -> int:
    """`python -m leadflow.core.queues <group>` prints the group's queues for -Q."""
    import os
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in GROUPS:
        print(f"usage: python -m leadflow.core.queues {{{'|'.join(GROUPS)}}}", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
    from django.conf import settings

    print(",".join(group_queues(args[0], settings.CELERY_ORG_SHARDS)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
