"""One tenant's backlog does not delay another tenant's scheduled work: a real
worker faces 3,000 queued capture tasks of org A, then org B's nurture
dispatch (through to the SMTP server), SLA sweep and 10 form submissions.
B's work must be done while most of A's backlog is still waiting — on a
single FIFO queue it would come after all of it."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from leadflow.celery import app as celery_app
from leadflow.core import queues
from leadflow.core.tenancy import tenant_scope
from leads.models import FormSubmission
from nurture import services
from nurture.models import EmailMessage
from pipeline.models import Assignment
from tests.factories import AssignmentFactory, CaptureFormFactory, FormSubmissionFactory
from tests.reliability.smtp import ScriptedSMTP, make_leads
from tests.workers import celery_worker, require_real_services, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BACKLOG = 3000


def queued_tasks() -> int:
    """Tasks waiting in the broker, on any queue (today's or the old single one)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    names = [*queues.queue_names(settings.CELERY_ORG_SHARDS), "celery"]
    return sum(client.llen(name) for name in names)


def push_backlog(organization_id: int, n: int) -> None:
    """n capture tasks for submissions that do not exist: each costs the worker
    a claim and two queries, like a real one that turns out to be done."""
    with celery_app.producer_or_acquire() as producer:
        for i in range(n):
            celery_app.send_task(
                "leads.process_submission",
                kwargs={"organization_id": organization_id, "submission_id": 10**9 + i},
                producer=producer,
            )


def test_a_capture_backlog_of_one_tenant_does_not_delay_anothers_sends_sla_and_capture(
    tmp_path, org, other_org, make_sequence
):
    require_real_services()
    celery_app.conf.task_always_eager = False
    a, b = org, other_org
    # The two tenants' capture and mail work sit in different shards.
    shards = settings.CELERY_ORG_SHARDS
    assert queues.queue_for("leads.process_submission", {"organization_id": a.pk}, shards) != (
        queues.queue_for("leads.process_submission", {"organization_id": b.pk}, shards)
    )
    server = ScriptedSMTP()
    server.start()
    sequence = make_sequence(b)
    with tenant_scope(b):
        services.enrollment_start(sequence=sequence, lead_ids=make_leads(b, 1, "b"))
        late = AssignmentFactory(
            lead__organization=b, accept_due_at=timezone.now() - timedelta(hours=1)
        )
        form = CaptureFormFactory(organization=b)
        submissions = [
            FormSubmissionFactory(form=form, payload={"email": f"s{i}@prospect.example"}).pk
            for i in range(10)
        ]
    push_backlog(a.pk, BACKLOG)
    assert queued_tasks() >= BACKLOG
    try:
        with celery_worker(tmp_path, extra_env=server.env):
            started = time.monotonic()
            for task in ("nurture.dispatch_all", "pipeline.sla_sweep"):
                celery_app.send_task(task)  # what beat sends every minute
            for submission_id in submissions:
                celery_app.send_task(
                    "leads.process_submission",
                    kwargs={"organization_id": b.pk, "submission_id": submission_id},
                )
            done = {}

            def b_is_done() -> bool:
                with tenant_scope(b):
                    checks = {
                        "nurture email accepted by SMTP": any(
                            server.accepted[m]
                            for m in EmailMessage.objects.values_list("message_id", flat=True)
                        ),
                        "SLA breach stamped": Assignment.objects.filter(
                            pk=late.pk, breached_at__isnull=False
                        ).exists(),
                        "10 submissions processed": FormSubmission.objects.filter(
                            pk__in=submissions, processed_at__isnull=False
                        ).count()
                        == 10,
                    }
                for what, ok in checks.items():
                    if ok and what not in done:
                        done[what] = (time.monotonic() - started, queued_tasks())
                return all(checks.values())

            try:
                wait_until(b_is_done, timeout=60, interval=0.05, what="org B's work")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; done by then: {done}") from exc
    finally:
        server.stop()
    for what, (seconds, left) in done.items():
        print(f"org B: {what} after {seconds:.2f} s, {left} of A's tasks still queued")
    for what, (_seconds, left) in done.items():
        assert left >= BACKLOG // 2, f"{what} only after most of A's backlog ({left} left)"
