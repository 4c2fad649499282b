"""A web request enqueues a task; a real Celery worker on Redis and PostgreSQL
completes it (no eager mode)."""

import pytest
from django.test import Client
from django.urls import reverse
from django_scopes import scopes_disabled

from accounts.models import Invitation, Role
from leadflow.celery import app as celery_app
from tests.workers import celery_worker, require_real_services, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_worker_completes_task_enqueued_by_web_request(tmp_path, org, admin, other_org):
    require_real_services()
    celery_app.conf.task_always_eager = False
    with celery_worker(tmp_path):
        client = Client()
        client.force_login(admin.user)
        response = client.post(
            reverse("accounts:members", kwargs={"org_slug": org.slug}),
            {"email": "colleague@acme.example", "role": Role.MARKETER},
        )
        assert response.status_code == 302

        def sent():
            with scopes_disabled():
                return Invitation.objects.get(email="colleague@acme.example").sent_at is not None

        wait_until(sent, timeout=90, what="the worker to send the invitation")
    mails = list((tmp_path / "mail").glob("*.log"))
    assert len(mails) == 1
    body = mails[0].read_text()
    assert "colleague@acme.example" in body
    assert "/invitations/" in body


def test_losing_redis_while_restoring_unacked_tasks_does_not_crash_the_worker(caplog):
    """kombu 5.7 raises AttributeError from a released connection here, which made
    the worker exit when Redis died with tasks in flight (seen in bench/faults.py)."""
    from types import SimpleNamespace

    from kombu.transport import redis as kombu_redis

    def released_connection(client=None):
        raise AttributeError("'NoneType' object has no attribute 'hostname'")

    qos = SimpleNamespace(
        channel=SimpleNamespace(conn_or_acquire=released_connection),
        _delivered={"tag-1": object(), "tag-2": object()},
    )
    assert kombu_redis.QoS.restore_unacked(qos) is None
    assert qos._delivered == {}
    assert "left to redelivery and the sweeps" in caplog.text
