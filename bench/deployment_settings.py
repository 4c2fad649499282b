"""Settings of bench/faults.py's deployment: bench/settings.py's (no per-IP rate
limit, no collectstatic), but with the product's Celery queues and routes, so
its worker and beat run as in production (capture.N shards, the beat queue)."""

from bench.settings import *  # noqa: F403
from leadflow.settings import CELERY_TASK_DEFAULT_QUEUE, CELERY_TASK_ROUTES  # noqa: F401
