"""Celery tasks of the leads app (autodiscovered as `leads.tasks`)."""

from leads.tasks.capture import *  # noqa: F403
from leads.tasks.consent import *  # noqa: F403
from leads.tasks.duplicates import *  # noqa: F403
from leads.tasks.exports import *  # noqa: F403
from leads.tasks.imports import *  # noqa: F403
