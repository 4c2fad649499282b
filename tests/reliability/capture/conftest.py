"""Fixtures of the capture reliability group (issue #12): a real Celery worker
on the test PostgreSQL and Redis, a hosted form and an API client of one
organization, with a second organization in play."""

import pytest

from leadflow.celery import app as celery_app
from tests.factories import api_key_for
from tests.reliability.capture.support import api_client, make_hosted_form
from tests.workers import celery_worker, require_real_services


@pytest.fixture
def real_services():
    require_real_services()
    celery_app.conf.task_always_eager = False


@pytest.fixture
def worker(real_services, tmp_path):
    # Connections kept between tasks, as in production (the worker exits after the test).
    with celery_worker(tmp_path, extra_env={"CONN_MAX_AGE": "60"}) as proc:
        yield proc


@pytest.fixture
def hosted(org, other_org):
    make_hosted_form(other_org)  # a look-alike in the other tenant must stay empty
    return make_hosted_form(org)


@pytest.fixture
def org_key(org):
    return api_key_for(org)


@pytest.fixture
def api(org_key):
    return api_client(org_key)
