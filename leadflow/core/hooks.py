"""The one hook registry: every extension point a lower app fires and a higher
app answers, with its argument types and the declared order of its receivers.

The lead lifecycle (ingest -> scoring -> routing -> nurture) is the chain of
these points; `python -m leadflow.core.hooks` prints it as resolved (the README and
tests/test_hook_chain.py pin that output).

A higher app registers in its AppConfig.ready() (or in a module ready()
imports)::

    @hooks.post_ingest.register("pipeline", after=("scoring",))
    def pql_after_ingest(organization_id: int, lead_ids: list[int]) -> None: ...

Receivers run in an order resolved from their `after`/`before` constraints
(app labels registered on the same point); receivers no constraint orders run
by app label, so INSTALLED_APPS order never matters. An unknown app label in a
constraint or a cycle is a HookError when the point is first fired.

This module is on the ground floor: it imports no app. Model arguments are
named by the aliases below (accounts.models.Organization and so on).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

# Model and request arguments, by name (leadflow does not import the apps).
Organization = Any  # accounts.models.Organization
User = Any  # accounts.models.User
Lead = Any  # leads.models.Lead
HttpRequest = Any  # django.http.HttpRequest with .organization and .membership
TextStream = Any  # a management command's stdout (OutputWrapper)
Panel = dict[str, Any]  # {"template": ..., **context}


class HookError(RuntimeError):
    pass


@dataclass(frozen=True)
class Receiver:
    app: str
    func: Callable[..., Any]
    after: tuple[str, ...] = ()
    before: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.func.__module__}.{self.func.__qualname__}"


class Hook(Generic[P, R]):
    """An extension point: receivers take P and return R; `call` runs them in
    the resolved order and returns their results."""

    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.doc = doc
        self._receivers: dict[str, Receiver] = {}
        self._resolved: list[Receiver] | None = None
        # Tests only: a fixed receiver list replacing the registered ones.
        self.overridden: list[Callable[P, R]] | None = None

    def __repr__(self) -> str:
        return f"<Hook {self.name}>"

    def register(
        self, app: str, *, after: tuple[str, ...] = (), before: tuple[str, ...] = ()
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorator: `func` answers this point for `app` (one receiver per
        app; registering the same function again is a no-op)."""

        def decorate(func: Callable[P, R]) -> Callable[P, R]:
            receiver = Receiver(app, func, tuple(after), tuple(before))
            known = self._receivers.get(app)
            if known is not None and known != receiver:
                raise HookError(f"{self.name}: {app} already registered {known.name}")
            self._receivers[app] = receiver
            self._resolved = None
            return func

        return decorate

    def resolved(self) -> list[Receiver]:
        if self._resolved is None:
            self._resolved = _order(self.name, list(self._receivers.values()))
        return self._resolved

    def receivers(self) -> list[Callable[P, R]]:
        if self.overridden is not None:
            return list(self.overridden)
        return [r.func for r in self.resolved()]

    def call(self, *args: P.args, **kwargs: P.kwargs) -> list[R]:
        return [func(*args, **kwargs) for func in self.receivers()]


def _order(name: str, receivers: list[Receiver]) -> list[Receiver]:
    """Topological order of the constraints; ties by app label."""
    by_app = {r.app: r for r in receivers}
    edges: dict[str, set[str]] = {app: set() for app in by_app}  # app -> apps after it
    for r in receivers:
        for other in r.after + r.before:
            if other not in by_app:
                raise HookError(f"{name}: {r.app} is ordered against {other}, not registered")
        for other in r.after:
            edges[other].add(r.app)
        for other in r.before:
            edges[r.app].add(other)
    waiting = {app: 0 for app in by_app}
    for targets in edges.values():
        for app in targets:
            waiting[app] += 1
    ready = [app for app, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    ordered: list[Receiver] = []
    while ready:
        app = heapq.heappop(ready)
        ordered.append(by_app[app])
        for nxt in edges[app]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, nxt)
    if len(ordered) != len(receivers):
        cycle = sorted(app for app, n in waiting.items() if n)
        raise HookError(f"{name}: order constraints form a cycle among {', '.join(cycle)}")
    return ordered


# The extension points, in lifecycle order.

organization_created: Hook[[Organization, User, str], None] = Hook(
    "organization_created",
    "accounts.services.organization_create: (organization, owner, business_type)"
    " after the tenant and its first admin exist.",
)


@dataclass(frozen=True)
class NewLeadScores:
    """A scorer's part of the one statement that inserts a new lead
    (PostgreSQL), so the lead is written once, scored, instead of inserted and
    then updated. Its SQL reads the lead about to be inserted from the CTEs
    `nl` (the row; its id from `nid`) and `na` (its activities), all columns.

    `ctes` (%s-style, `params`) come after those; the lead's INSERT … SELECT
    reads `FROM nl {joins}` and takes `columns` (lead column -> SQL) instead of
    the row's own values; `after` (`after_params`) are CTEs run once the lead
    is inserted (`l`: its id); `result` are columns the statement returns for
    the scorer, which post_ingest receivers read from
    leads.services.ingest.ingested_touch().scored_at_insert."""

    ctes: str
    params: list[Any]
    joins: str
    columns: dict[str, str]
    after: str
    after_params: list[Any]
    result: str


new_lead_scores: Hook[[int, datetime], NewLeadScores | None] = Hook(
    "new_lead_scores",
    "leads ingest, one new lead on PostgreSQL: (organization_id, now) -> the scorer's part"
    " of the statement that inserts it (NewLeadScores), or None to score it afterwards;"
    " the first answer is used.",
)
post_ingest: Hook[[int, list[int]], None] = Hook(
    "post_ingest",
    "leads ingest (capture, import, activities): (organization_id, lead_ids) inside the"
    " batch's transaction after its writes; leads.services.ingest.ingested_touch() tells"
    " what the write recorded.",
)
mql_crossing: Hook[[int, list[int], list[int]], None] = Hook(
    "mql_crossing",
    "scoring.engine.apply: (organization_id, crossed_up_ids, crossed_down_ids) when a"
    " rescore moves leads over or under the MQL threshold.",
)
stage_changed: Hook[[int, list[int], str, str], None] = Hook(
    "stage_changed",
    "pipeline transitions: (organization_id, lead_ids, from_stage or '', to_stage) inside"
    " the transaction of the change.",
)
import_outcome: Hook[[int, list[tuple[int, str, datetime | None]]], None] = Hook(
    "import_outcome",
    "leads import: (organization_id, [(lead_id, 'won' | 'lost', closed_at | None), ...])"
    " for rows with an outcome column.",
)
lead_created: Hook[[int, list[int]], None] = Hook(
    "lead_created",
    "leads ingest: (organization_id, lead_ids) of the leads a batch created, inside its"
    " transaction after post_ingest.",
)
lead_updated: Hook[[int, dict[int, dict[str, list[Any]]]], None] = Hook(
    "lead_updated",
    "leads edits and ingest: (organization_id, {lead_id: {field: [old, new], ...}}) inside"
    " the write's transaction, for the leads whose fields changed.",
)
lead_merged: Hook[[int, int, int], dict[str, Any] | None] = Hook(
    "lead_merged",
    "leads.services.leads.lead_merge: (organization_id, kept_id, dropped_id) inside the"
    " merge's transaction after the fields and history moved; a receiver returns what it"
    " changed (JSON) and gets it back in lead_unmerged.",
)
lead_unmerged: Hook[[int, int, int, dict[str, Any]], None] = Hook(
    "lead_unmerged",
    "leads.services.leads.lead_merge_undo: (organization_id, kept_id, dropped_id, what the"
    " receiver returned from lead_merged) after both leads are restored.",
)
lead_deleted: Hook[[int, list[dict[str, Any]]], None] = Hook(
    "lead_deleted",
    "leads.services.leads.leads_deleted: (organization_id, [lead values, ...]) inside the"
    " transaction that deletes them, before the rows go.",
)
lead_detail_panels: Hook[[HttpRequest, Lead], Panel | None] = Hook(
    "lead_detail_panels",
    "leads lead detail page: (request, lead) -> panel dict or None.",
)
home_panels: Hook[[HttpRequest], Panel | None] = Hook(
    "home_panels",
    "accounts organization overview: (request) -> panel dict or None.",
)
role_home: Hook[[str], str | None] = Hook(
    "role_home",
    "accounts organization home: (role) -> URL name (taking org_slug) of the page that"
    " role lands on instead of the overview, or None; the first answer wins.",
)
demo_steps: Hook[[Organization, TextStream], None] = Hook(
    "demo_steps",
    "seed_demo command: (organization, stdout) inside the demo tenant's scope.",
)

HOOKS: list[Hook[..., Any]] = [
    organization_created,
    new_lead_scores,
    post_ingest,
    mql_crossing,
    stage_changed,
    import_outcome,
    lead_created,
    lead_updated,
    lead_merged,
    lead_unmerged,
    lead_deleted,
    lead_detail_panels,
    home_panels,
    role_home,
    demo_steps,
]


def chain() -> str:
    """The resolved chain, one point a line: `name: app:module.function -> ...`."""
    return "\n".join(
        f"{hook.name}: " + " -> ".join(f"{r.app}:{r.name}" for r in hook.resolved())
        for hook in HOOKS
    )


if __name__ == "__main__":
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadflow.settings")
    django.setup()
    from leadflow.core import hooks  # the registered module, not this __main__ copy

    print(hooks.chain())
