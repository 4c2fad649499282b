"""The Celery app, wired the cookiecutter-django way: configuration comes from
Django settings under the CELERY_ namespace, tasks are discovered per app."""

import os

from celery import Celery
from celery.signals import celeryd_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")

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
