"""A capture of one lead doesn't publish a duplicate refresh of its own: its id
joins the organization's pending ids and one drain refreshes them all
(leadflow.core.coalesce). Nothing is lost: without Redis the ids travel in a
task as before, a failed drain puts them back, a lost drain is swept."""

from unittest import mock

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from leadflow.core import coalesce
from leadflow.core.tenancy import tenant_scope
from leads.models import ActivityKind, Channel
from leads.services import duplicates as dup
from leads.services.ingest import Touch, lead_ingest_batch
from leads.tasks import duplicates as tasks
from tests.factories import LeadFactory
from tests.leads.test_duplicates import pairs, refresh

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_cache():
    if not isinstance(caches["default"], RedisCache):
        pytest.skip("needs Redis as the cache (scripts/with_services.py)")


@pytest.fixture
def published():
    """The tasks the coalescer sends, recorded instead of sent."""
    with mock.patch.object(coalesce, "publish") as publish:
        yield publish


def capture(org, callbacks, **row):
    """One lead through the single-lead ingest, its commit callbacks run."""
    touch = Touch(source=Channel.DIRECT, activity_kind=ActivityKind.FORM_SUBMIT)
    with tenant_scope(org), callbacks(execute=True):
        [result] = lead_ingest_batch(organization_id=org.pk, rows=[row], touch=touch)
    return result.lead_id


def a_phone_twin_pending(org, callbacks) -> tuple:
    """A refreshed lead, and a capture of its phone twin whose drain message
    never went out (held back, or lost): its id waits in the pending list."""
    first = LeadFactory(organization=org, email="zoe@acme.example", phone="+4930123456")
    refresh(org, first)
    with mock.patch.object(coalesce, "publish"):
        new = capture(org, callbacks, email="z@b.example", phone="030 123456", country="DE")
    return first, new


def drains(publish) -> list:
    return [c for c in publish.call_args_list if c.args == ("leads.drain_duplicates",)]


def test_single_captures_share_one_drain_and_a_push_after_the_take_arms_the_next(
    redis_cache, published, org, other_org, django_capture_on_commit_callbacks
):
    ids = [
        capture(org, django_capture_on_commit_callbacks, email=f"p{n}@acme.example")
        for n in range(3)
    ]
    theirs = capture(other_org, django_capture_on_commit_callbacks, email="p@globex.example")
    assert drains(published) == [
        mock.call("leads.drain_duplicates", countdown=1.0, organization_id=org.pk),
        mock.call("leads.drain_duplicates", countdown=1.0, organization_id=other_org.pk),
    ]
    assert tasks.PENDING.take(org.pk) == sorted(ids)  # never the other tenant's
    assert tasks.PENDING.take(org.pk) == []
    later = capture(org, django_capture_on_commit_callbacks, email="late@acme.example")
    assert len(drains(published)) == 3  # the take dropped the flag: a new drain is sent
    assert tasks.PENDING.take(org.pk) == [later]
    assert tasks.PENDING.take(other_org.pk) == [theirs]


def test_the_drain_refreshes_the_pending_leads_pairs(
    redis_cache, org, other_org, django_capture_on_commit_callbacks
):
    first, new = a_phone_twin_pending(org, django_capture_on_commit_callbacks)
    with mock.patch.object(coalesce, "publish"):
        capture(other_org, django_capture_on_commit_callbacks, email="x@globex.example")
    assert pairs(org) == {}
    assert tasks.drain_duplicates(organization_id=org.pk) == 1
    assert pairs(org) == {(first.pk, new): ["Same phone"]}
    assert tasks.PENDING.take(other_org.pk) != []  # the other tenant's ids are its own


def test_ids_whose_drain_message_was_lost_are_swept(
    redis_cache, org, other_org, django_capture_on_commit_callbacks
):
    first, new = a_phone_twin_pending(org, django_capture_on_commit_callbacks)
    tasks.sweep_duplicates(organization_id=org.pk)
    assert pairs(org) == {(first.pk, new): ["Same phone"]}


def test_the_drain_hands_its_ids_to_refresh_messages_and_keeps_them_if_none_can_be_sent(
    redis_cache, org, other_org, django_capture_on_commit_callbacks
):
    """Once taken, ids live in a refresh task's message (acks_late, retried):
    a worker that dies mid-refresh loses none. A broker that refuses the
    message leaves them pending for the drain's retry; the sweep still runs
    its database pass while Redis is down."""
    from kombu.exceptions import OperationalError as BrokerError

    with mock.patch.object(coalesce, "publish"):
        new = capture(org, django_capture_on_commit_callbacks, email="z@b.example")
    with (
        mock.patch.object(tasks.refresh_duplicates, "apply_async", side_effect=BrokerError),
        pytest.raises(BrokerError),
    ):
        tasks.drain_duplicates.run(organization_id=org.pk)
    with mock.patch.object(tasks.refresh_duplicates, "apply_async") as sent:
        assert tasks.drain_duplicates.run(organization_id=org.pk) == 1
    sent.assert_called_once_with(kwargs={"organization_id": org.pk, "lead_ids": [new]})
    import redis

    with (
        mock.patch.object(redis.client.Pipeline, "execute", side_effect=redis.ConnectionError),
        mock.patch.object(redis.Redis, "delete", side_effect=redis.ConnectionError),
        mock.patch.object(dup, "duplicates_sweep", return_value=0) as swept,
    ):
        tasks.sweep_duplicates(organization_id=org.pk)
    swept.assert_called_once_with(organization_id=org.pk)


def test_without_redis_the_ids_travel_in_their_own_task(
    published, org, django_capture_on_commit_callbacks
):
    with mock.patch.object(coalesce.Coalesced, "_redis", return_value=(None, "k", "k:armed")):
        new = capture(org, django_capture_on_commit_callbacks, email="z@b.example")
    assert published.call_args_list == [
        mock.call("leads.refresh_duplicates", organization_id=org.pk, lead_ids=[new])
    ]


def test_a_redis_outage_sends_the_ids_in_their_own_task(
    redis_cache, published, org, django_capture_on_commit_callbacks
):
    import redis

    with mock.patch.object(
        redis.client.Pipeline, "execute", side_effect=redis.ConnectionError("down")
    ):
        new = capture(org, django_capture_on_commit_callbacks, email="z@b.example")
    assert published.call_args_list == [
        mock.call("leads.refresh_duplicates", organization_id=org.pk, lead_ids=[new])
    ]


def test_batches_keep_their_own_task(published, org, django_capture_on_commit_callbacks):
    rows = [{"email": f"b{n}@acme.example"} for n in range(tasks.COALESCED_MAX + 1)]
    touch = Touch(source=Channel.DIRECT, activity_kind=ActivityKind.FORM_SUBMIT)
    with (
        mock.patch("leads.tasks.duplicates.enqueue_on_commit") as enqueue,
        tenant_scope(org),
        django_capture_on_commit_callbacks(execute=True),
    ):
        results = lead_ingest_batch(organization_id=org.pk, rows=rows, touch=touch)
    assert published.call_args_list == []
    enqueue.assert_called_once_with(
        tasks.refresh_duplicates,
        organization_id=org.pk,
        lead_ids=sorted(r.lead_id for r in results),
    )
