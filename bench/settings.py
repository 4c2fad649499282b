"""Settings of the benchmark server (bench/capture.py): the real settings, plus
the bench-only URLs (the floor view) and no per-IP rate limit, since every
request of the load generator comes from one address."""

import os
import warnings

from leadflow.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
LEADS_CAPTURE_RATE_LIMIT = None
# The API's per-key limit stays on (its cache round trip is part of a request),
# high enough for the bench's one key.
LEADFLOW_API_RATE_LIMIT = "100000000/m"
if not os.environ.get("BENCH_REAL_QUEUES"):
    # Enqueued processing goes to a queue of its own that the bench empties
    # afterwards (the processing-latency phase keeps leadflow.core.queues' routes).
    CELERY_TASK_DEFAULT_QUEUE = "bench-capture"
    CELERY_TASK_ROUTES = {"*": {"queue": "bench-capture"}}  # not leadflow.core.queues' capture.N
# Templates link static files; the bench never runs collectstatic.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
SECURE_SSL_REDIRECT = False

# whitenoise warns once per worker that collectstatic never ran; the bench serves no static files.
warnings.filterwarnings("ignore", message="No directory at")
