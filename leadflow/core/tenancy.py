"""The tenant wall: the base of every tenant-owned model, the object lookup that
turns foreign rows into 404s, and the Celery task base that activates a scope.

Scoping fails closed: a query on a tenant model with no active scope raises
django_scopes.ScopeError instead of returning every tenant's rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from celery import Task
from django.core.exceptions import ObjectDoesNotExist
from django.db import models, transaction
from django.http import Http404
from django.utils.functional import SimpleLazyObject
from django_scopes import ScopedManager, scope
from kombu.exceptions import OperationalError as BrokerError

M = TypeVar("M", bound=models.Model)
T = TypeVar("T")
log = logging.getLogger(__name__)


class TenantModel(models.Model):
    """Abstract base of every tenant-owned row."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, db_index=True, related_name="+"
    )

    objects = ScopedManager(organization="organization")  # type: ignore[django-manager-missing]

    class Meta:
        abstract = True


def _org_key(organization: Any) -> int:
    key = getattr(organization, "pk", organization)
    if key is None:
        # django-scopes treats None as "no filter": never let that happen.
        raise ValueError("A tenant scope needs an organization, got None")
    return int(key)


@contextmanager
def tenant_scope(organization: Any):
    """Activate the scope of one organization (instance or id)."""
    with scope(organization=_org_key(organization)):
        yield


def scoped_lazy(organization: Any, build: Callable[[], T]) -> T:
    """`build()` on first use, inside the organization's scope wherever that use
    is: a view's optional context (built only if the template prints it) may be
    touched after the view returned, by a test reading the context for one."""

    def setup() -> T:
        with tenant_scope(organization):
            return build()

    return cast(T, SimpleLazyObject(setup))


def get_tenant_object_or_404(model_or_qs: type[M] | models.QuerySet, **lookup: Any) -> M:
    """Fetch one object of the active organization; missing and foreign rows alike are 404."""
    qs = model_or_qs._default_manager.all() if isinstance(model_or_qs, type) else model_or_qs
    try:
        return qs.get(**lookup)
    except (ObjectDoesNotExist, ValueError, TypeError) as exc:
        raise Http404(f"No {qs.model._meta.verbose_name} matches the given query.") from exc


class TenantTask(Task):
    """Celery task base: every call names its organization_id and runs inside that scope.

    acks_late + reject_on_worker_lost: a task a dying worker held is redelivered,
    so tasks built on this base must be idempotent (re-read rows, skip done work).
    """

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    max_retries = 5
    retry_backoff = True
    retry_backoff_max = 600
    retry_jitter = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if "organization_id" not in kwargs:
            raise TypeError(f"{self.name} must be called with organization_id=")
        with tenant_scope(kwargs["organization_id"]):
            return super().__call__(*args, **kwargs)

    def fan_out(
        self, organization_ids: Iterable[int], *, expires: float | None = None, **kwargs: Any
    ) -> int:
        """A periodic task's fan-out: one call of this task per organization (with
        the same other kwargs), expiring after `expires` seconds when given (the
        next beat sends it again). Returns how many were sent."""
        ids = list(organization_ids)
        for organization_id in ids:
            self.apply_async(kwargs={"organization_id": organization_id, **kwargs}, expires=expires)
        return len(ids)


def _registered_task(name: str) -> Task:
    """The task registered under `name`. Outside a worker, task modules are
    imported as code uses them: a miss imports them all (Celery's autodiscovery,
    once per process) before it counts as unknown (KeyError)."""
    from celery import current_app

    if name not in current_app.tasks:
        current_app.loader.import_default_modules()
    return current_app.tasks[name]


def enqueue_on_commit(task: Task | str, **kwargs: Any) -> None:
    """Send a task only once the current transaction commits (never for rolled-back rows).

    `task` is the task or its registered name: a service names the task that
    calls it back, so the service and the task module don't import each other
    (an unknown name raises here, in the service's own call, not at commit).
    The rows are committed by then: an unreachable broker is logged, not raised,
    so the request that wrote them is not answered 5xx (which tells an API
    client that nothing was written); the periodic sweeps pick up the work."""
    if isinstance(task, str):
        task = _registered_task(task)
    transaction.on_commit(lambda: publish(task, **kwargs))


def publish(task: Task | str, *, countdown: float | None = None, **kwargs: Any) -> None:
    """Send a task now (its rows are committed): an unreachable broker is logged,
    not raised; the task's periodic sweep does the work instead."""
    if isinstance(task, str):
        task = _registered_task(task)
    try:
        task.apply_async(kwargs=kwargs, countdown=countdown)
    except BrokerError:
        log.warning("Broker unavailable; %s %s left for its sweep", task.name, kwargs)
