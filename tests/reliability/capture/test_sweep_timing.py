"""Issue #12: the capture sweep recovers lost submissions within a minute, yet
never re-enqueues a backlog that merely waits in its capture shard queue: it
reads the shard's depth from Redis."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from leadflow.celery import app as celery_app
from leadflow.core import queues
from leadflow.core.tenancy import tenant_scope
from leads.models import FormSubmission
from leads.services import capture
from leads.tasks.capture import process_submission
from tests.reliability.capture.support import make_hosted_form

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_queued_submission_is_left_to_its_queue_and_a_lost_one_is_swept(
    real_services, org, other_org
):
    form = make_hosted_form(org)
    shard = queues.shard_for(queues.CAPTURE, org.pk)
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge(shard)
    with tenant_scope(org):
        waiting = FormSubmission.objects.create(
            organization=org, form=form, payload={"email": "waiting@acme-corp.com"}
        )
        FormSubmission.objects.update(received_at=timezone.now() - timedelta(minutes=3))
    # No worker: its task waits in the shard queue, as behind a backlog.
    process_submission.apply_async(kwargs={"organization_id": org.pk, "submission_id": waiting.pk})
    try:
        assert queues.queue_depths([shard]) == {shard: 1}
        assert capture.organizations_with_lost_submissions() == {}
    finally:
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_purge(shard)
    # Its task is gone (a restarted Redis, a killed worker's unacked message).
    assert queues.queue_depths([shard]) == {shard: 0}
    assert list(capture.organizations_with_lost_submissions()) == [org.pk]
