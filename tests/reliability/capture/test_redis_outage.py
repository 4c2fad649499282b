"""Issue #12, item 5: with Redis down (broker and cache), a visitor's form post
is answered within about a second, the submission is stored, and the sweep
processes it once Redis is back; the API's rate limiter fails open."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

import pytest
from django.test import Client

from leadflow.celery import app as celery_app
from leads.services import capture
from leads.tasks.capture import sweep_unprocessed_submissions
from tests.reliability.capture.support import (
    backdate_submissions,
    dead_port,
    form_url,
    ledger,
    post_lead,
)
from tests.workers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

VISITORS = 6


def _forget_broker_pools() -> None:
    # kombu keeps one pool per broker URL: the app picks the pool of its
    # current URL again on the next publish (the real one stays open meanwhile).
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def redis_down(settings):
    """This process's broker and cache point at a port nothing listens on;
    the worker keeps the real Redis (it is the broker coming back)."""
    dead = f"redis://127.0.0.1:{dead_port()}/0"
    saved_broker = celery_app.conf.broker_url
    saved_caches = settings.CACHES
    _forget_broker_pools()
    celery_app.conf.broker_url = dead
    settings.CACHES = {"default": {**saved_caches["default"], "LOCATION": dead}}
    try:
        yield
    finally:
        settings.CACHES = saved_caches
        _forget_broker_pools()
        celery_app.conf.broker_url = saved_broker
        capture.broker_breaker.reset()


def test_form_posts_are_answered_fast_and_processed_once_redis_is_back(
    worker, settings, org, other_org, hosted, api, caplog
):
    client = Client(raise_request_exception=False)
    timings = []
    with redis_down(settings), caplog.at_level(logging.WARNING):
        for i in range(VISITORS):
            started = time.monotonic()
            response = client.post(
                form_url(hosted), {"email": f"visitor{i}@acme-corp.com", "first_name": "Vi"}
            )
            timings.append(time.monotonic() - started)
            assert response.status_code == 200, response.content
        api_response = post_lead(api, {"email": "api-client@acme-corp.com"})
    assert max(timings) < 1.5, f"visitors waited {[round(t, 2) for t in timings]} s"
    # The rate limiter could not count: it let the request through, and said so.
    assert api_response.status_code == 201, api_response.content
    assert "Rate-limit cache down" in caplog.text
    assert ledger(org) == {
        "stored": VISITORS + 1,
        "processed": 1,  # the API request, answered synchronously
        "pending": VISITORS,  # accepted while the broker was down: the sweep's
        "leads": 1,
        "activities": 0,
    }

    backdate_submissions(org)
    sweep_unprocessed_submissions.apply_async()
    wait_until(lambda: ledger(org)["pending"] == 0, timeout=60, what="the sweep to catch up")
    assert ledger(org) == {
        "stored": VISITORS + 1,
        "processed": VISITORS + 1,
        "pending": 0,
        "leads": VISITORS + 1,
        "activities": VISITORS,  # one form_submit each: none lost, none twice
    }
    assert ledger(other_org)["stored"] == 0
