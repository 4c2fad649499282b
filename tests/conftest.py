"""Shared fixtures: two tenants, a member of each role, logged-in clients.

Every test module that touches tenant data has `other_org` in play.
"""

import os
import re
from collections import Counter

import pytest
from django.conf import settings
from django.test import Client
from django_scopes import scopes_disabled

from accounts.models import Role
from leadflow.celery import app as celery_app
from tests.browser.playwright import browser, new_page, page, shot  # noqa: F401 (fixtures)
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

# Users are made by the hundred: a deliberately slow password hash (PBKDF2 with a
# million rounds) would be most of the suite's set-up time, and proves nothing here.
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _eager_celery():
    """Unit tests run tasks eagerly; integration tests switch this off."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def retrying():
    """Eager tasks retry in place (as a worker would) only when errors don't propagate."""
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_eager_propagates = True


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    from scoring.engine.cache import forget_local

    cache.clear()
    forget_local()  # the scoring config memo: ids and versions repeat across tests
    yield


@pytest.fixture
def org(db):
    return OrganizationFactory(name="Acme", slug="acme")


@pytest.fixture
def other_org(db):
    return OrganizationFactory(name="Globex", slug="globex")


@pytest.fixture
def make_member(db):
    def make(organization, role=Role.ADMIN, **user_kwargs):
        user = UserFactory(**user_kwargs)
        return MembershipFactory(organization=organization, user=user, role=role)

    return make


@pytest.fixture
def admin(org, make_member):
    return make_member(org, Role.ADMIN, email="admin@acme.example")


@pytest.fixture
def marketer(org, make_member):
    return make_member(org, Role.MARKETER, email="marketer@acme.example")


@pytest.fixture
def sales_rep(org, make_member):
    return make_member(org, Role.SALES_REP, email="rep@acme.example")


@pytest.fixture
def other_admin(other_org, make_member):
    return make_member(other_org, Role.ADMIN, email="admin@globex.example")


@pytest.fixture
def client_for(db):
    """A logged-in Client for a membership's user."""

    def make(membership):
        client = Client()
        client.force_login(membership.user)
        return client

    return make


@pytest.fixture
def admin_client(admin, client_for):
    return client_for(admin)


@pytest.fixture
def no_scope():
    """Fixture-style setup that reads tenant rows outside any request."""
    with scopes_disabled():
        yield


def pytest_configure(config):
    # Each xdist process gets its own cache: the autouse cache.clear() is a
    # FLUSHDB on Redis, which must touch neither the other process's keys
    # (rate limits) nor the Celery broker on database 0.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    from django.conf import settings

    cache = settings.CACHES["default"]
    if "redis" in cache["BACKEND"].lower():
        number = int(worker.removeprefix("gw")) + 1
        cache["LOCATION"] = re.sub(r"/\d*$", "", cache["LOCATION"]) + f"/{number}"
    else:
        cache["LOCATION"] = f"{cache['LOCATION']}-{worker}"


@pytest.hookimpl(tryfirst=True)  # before xdist's hook reads the groups
def pytest_collection_modifyitems(config, items):
    # `make test` runs the suite on two xdist processes (--dist loadgroup). Tests
    # with a real Celery worker share one Redis broker, so they all run in one
    # process, one after another; everything else spreads freely.
    for item in items:
        if item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.xdist_group("real-worker"))


# The fuzzers' counts (tests/fuzz): summed in the controller, printed at the end.
def pytest_terminal_summary(terminalreporter):
    totals: Counter = Counter()
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "teardown":
                continue
            for name, value in getattr(report, "user_properties", ()):
                if name.startswith("fuzz_"):
                    totals[name] += value
    if totals:
        terminalreporter.write_line(
            f"fuzzing: {totals['fuzz_cases']} cases run, "
            f"{totals['fuzz_server_errors']} server errors, "
            f"{totals['fuzz_partial_writes']} partial writes"
        )
