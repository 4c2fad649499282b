"""A task still running is never handed to a second worker: Redis's visibility
timeout (after which an unacked message is delivered again) outlasts the
longest time limit of any task."""

from django.conf import settings

from leadflow.celery import app


def test_the_visibility_timeout_outlasts_every_task_time_limit():
    app.loader.import_default_modules()
    limits = {
        name: task.time_limit
        for name, task in app.tasks.items()
        if not name.startswith("celery.") and task.time_limit
    }
    assert limits.get("scoring.run_rescore_job") == 3 * 3600  # the longest today
    too_long = {n: t for n, t in limits.items() if t >= settings.CELERY_VISIBILITY_TIMEOUT}
    assert not too_long, f"longer than the visibility timeout: {too_long}"
    if settings.REDIS_URL:
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        assert options["visibility_timeout"] == settings.CELERY_VISIBILITY_TIMEOUT
