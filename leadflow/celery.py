"""The Celery app, wired the cookiecutter-django way: configuration comes from
Django settings under the CELERY_ namespace, tasks are discovered per app."""

import functools
import logging
import os

from celery import Celery
from celery.signals import celeryd_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")

log = logging.getLogger(__name__)
app = Celery("leadflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


WORKER_BROKER_SOCKET_TIMEOUT = 10


@celeryd_init.connect
def _worker_broker_timeouts(conf=None, **kwargs):
    """A worker's own blocking Redis calls (acks, restores) get more slack than a
    web request's publish, which must give up within about a second."""
    options = dict(conf.broker_transport_options or {})
    if "socket_timeout" in options:
        options["socket_timeout"] = max(options["socket_timeout"], WORKER_BROKER_SOCKET_TIMEOUT)
        conf.broker_transport_options = options


def _guard_unacked_restore() -> None:
    """kombu 5.7's Redis transport can crash a worker when Redis goes away with
    tasks in flight: restoring their unacked messages asks the already released
    connection for its hostname (AttributeError), and the worker exits. Those
    messages stay in Redis' unacked set, which redelivers them after the
    visibility timeout, and the capture, import and mail sweeps recover the work
    within a minute; so log it and let the worker reconnect instead."""
    from kombu.transport import redis as kombu_redis

    original = kombu_redis.QoS.restore_unacked
    if getattr(original, "leadflow_guarded", False):
        return

    @functools.wraps(original)
    def restore_unacked(self, client=None):
        try:
            return original(self, client)
        except AttributeError:
            log.warning(
                "Redis connection lost while restoring %d unacknowledged tasks; "
                "left to redelivery and the sweeps",
                len(self._delivered),
            )
            self._delivered.clear()
            return None

    restore_unacked.leadflow_guarded = True  # type: ignore[attr-defined]
    kombu_redis.QoS.restore_unacked = restore_unacked


_guard_unacked_restore()
