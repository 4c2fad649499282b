"""The lead lifecycle as wired on the hook registry (leadflow.core.hooks): the
resolved chain is pinned here and in the README, and the registry's ordering
rules are unit-tested."""

from __future__ import annotations

import ast
import inspect
import re
import typing
from pathlib import Path

import pytest

from leadflow.core import hooks
from leadflow.core.hooks import Hook, HookError

PINNED_CHAIN = """\
organization_created: scoring:scoring.services.install_starter_rules_for -> pipeline:pipeline.services.deal_stages.install_default_stages_for
new_lead_scores: scoring:scoring.engine.apply.new_lead_scores
post_ingest: scoring:scoring.rescoring.rescore_after_ingest -> pipeline:pipeline.services.mql.pql_after_ingest -> nurture:nurture.services.hooks.after_ingest -> leads:leads.tasks.duplicates.duplicates_after_ingest
mql_crossing: pipeline:pipeline.services.mql.mql_after_rescore -> nurture:nurture.services.hooks.after_mql_crossing
stage_changed: pipeline:pipeline.services.webhooks.webhooks_on_stage_changed -> nurture:nurture.services.hooks.after_stage_change
import_outcome: pipeline:pipeline.services.outcomes.outcomes_after_import
lead_created: pipeline:pipeline.services.webhooks.webhooks_on_lead_created
lead_updated: pipeline:pipeline.services.webhooks.webhooks_on_lead_updated
lead_merged: pipeline:pipeline.services.merges.pipeline_after_merge -> scoring:scoring.rescoring.rescore_after_merge
lead_unmerged: pipeline:pipeline.services.merges.pipeline_after_unmerge -> scoring:scoring.rescoring.rescore_after_unmerge
lead_deleted: pipeline:pipeline.services.webhooks.webhooks_on_lead_deleted
lead_detail_panels: scoring:scoring.panels.score_panel -> pipeline:pipeline.panels.pipeline_panel -> privacy:privacy.panels.privacy_panel
home_panels: leads:leads.home.leads_panel
role_home: pipeline:pipeline.panels.rep_queue_home
demo_steps: leads:leads.demo.seed -> scoring:scoring.demo.seed -> pipeline:pipeline.demo.seed -> nurture:nurture.demo.seed"""  # noqa: E501

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_resolved_chain_is_pinned():
    chain = hooks.chain()
    print(chain)
    assert chain == PINNED_CHAIN


def test_the_readme_lists_the_pinned_chain():
    text = README.read_text()
    block = re.search(r"<!-- hook-chain -->\n```text\n(.*?)\n```", text, re.S)
    assert block, "README: the hook chain block (python -m leadflow.core.hooks) is missing"
    assert block.group(1) == PINNED_CHAIN


def test_the_readme_diagram_follows_the_chain():
    """Each diagram edge `-- <point> <n> --> id[<app>: <function>...]` is the
    n-th receiver of that point: the lifecycle's points appear with all their
    receivers, in the resolved order."""
    diagram = re.search(r"```mermaid\n(.*?)```", README.read_text(), re.S)
    assert diagram
    edges = re.findall(r"-- (\w+) (\d+) --> \w+\[(\w+): (\w+)", diagram.group(1))
    drawn: dict[str, list[tuple[int, str, str]]] = {}
    for point, n, app, func in edges:
        drawn.setdefault(point, []).append((int(n), app, func))
    assert {"post_ingest", "mql_crossing", "stage_changed"} <= set(drawn)
    for point, receivers in drawn.items():
        expected = [(r.app, r.func.__name__) for r in getattr(hooks, point).resolved()]
        assert [(app, func) for _, app, func in sorted(receivers)] == expected, point


def test_every_receiver_matches_its_points_arity():
    """A receiver takes the arguments its point declares (Hook[[...], R])."""
    for name, annotation in typing.get_type_hints(hooks).items():
        if typing.get_origin(annotation) is not Hook:
            continue
        declared = len(typing.get_args(annotation)[0])
        for receiver in getattr(hooks, name).resolved():
            params = inspect.signature(receiver.func).parameters.values()
            positional = [
                p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            required = [p for p in positional if p.default is p.empty]
            assert len(required) <= declared <= len(positional), (name, receiver.name)


def test_every_point_is_listed_and_documented():
    declared = [v for v in vars(hooks).values() if isinstance(v, Hook)]
    assert sorted(h.name for h in declared) == sorted(h.name for h in hooks.HOOKS)
    assert all(h.doc for h in hooks.HOOKS)


def first(*args):
    return "first"


def second(*args):
    return "second"


def third(*args):
    return "third"


def test_receivers_without_constraints_run_by_app_label():
    hook: Hook[[int], str] = Hook("t", "test")
    hook.register("pipeline")(second)
    hook.register("nurture")(first)
    assert hook.call(1) == ["first", "second"]


def test_after_and_before_constraints_order_the_receivers():
    hook: Hook[[int], str] = Hook("t", "test")
    hook.register("nurture", after=("scoring",))(third)
    hook.register("scoring")(first)
    hook.register("pipeline", after=("scoring",), before=("nurture",))(second)
    assert [r.app for r in hook.resolved()] == ["scoring", "pipeline", "nurture"]
    hook2: Hook[[int], str] = Hook("t2", "test")
    hook2.register("accounts", after=("reports",))(second)
    hook2.register("reports")(first)
    assert hook2.call(1) == ["first", "second"]


def test_a_cycle_is_an_error():
    hook: Hook[[int], str] = Hook("t", "test")
    hook.register("a", after=("b",))(first)
    hook.register("b", after=("c",))(second)
    hook.register("c", after=("a",))(third)
    hook.register("d")(third)
    with pytest.raises(HookError, match="cycle among a, b, c"):
        hook.call(1)


def test_ordering_against_an_app_not_registered_is_an_error():
    hook: Hook[[int], str] = Hook("t", "test")
    hook.register("pipeline", after=("scorng",))(first)
    with pytest.raises(HookError, match="scorng, not registered"):
        hook.receivers()


def test_one_receiver_per_app_and_registering_again_is_a_no_op():
    hook: Hook[[int], str] = Hook("t", "test")
    hook.register("scoring")(first)
    hook.register("scoring")(first)
    assert hook.receivers() == [first]
    with pytest.raises(HookError, match="already registered"):
        hook.register("scoring")(second)


def test_a_registration_after_resolving_is_seen():
    hook: Hook[[int], str] = Hook("t", "test")
    hook.register("scoring")(second)
    assert hook.call(1) == ["second"]
    hook.register("leads")(first)
    assert hook.call(1) == ["first", "second"]


def test_the_registry_imports_no_app():
    """leadflow is the ground floor: the apps import the registry, never the reverse."""
    source = Path(hooks.__file__).read_text()
    apps = {"accounts", "leads", "scoring", "pipeline", "nurture", "reports"}
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
        if not isinstance(node, ast.ImportFrom) or node.module
    }
    assert not imported & apps
