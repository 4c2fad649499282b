"""Fail on import cycles between files (modules) of LeadFlow's packages.

import-linter's contracts keep the apps in layers; this keeps each file graph
acyclic too. Every import counts, also one inside a function ("imported late:
no cycle" still is one: the two files cannot be understood or moved apart).
A cycle is a strongly connected component of the module import graph (grimp,
import-linter's graph library). Known cycles are listed in ALLOWED with the
reason they are still there; a new cycle, or a listed one that has changed or
gone, fails the check so that the list stays true.

Usage: python scripts/check_cycles.py   (exit status 1 on a finding)
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's packages, not an installed copy

PACKAGES = ("leadflow", "accounts", "leads", "scoring", "pipeline", "nurture", "reports")

# The modules of one cycle -> why it is still allowed. Most are one pattern:
# a service enqueues its task on commit (CONVENTIONS: writes in services,
# thin tasks) and imports the task late; the thin task imports the service.
# Breaking them means enqueueing by task name or through a registry, a change
# for the per-organization task-base work of issue #14, not for this check.
_ENQUEUE = "service enqueues its task (late import), the task calls the service"
ALLOWED: dict[frozenset[str], str] = {
    frozenset({"accounts.models", "accounts.permissions"}): (
        "Membership.has_perm asks the permission table (late import), which names the roles"
    ),
    frozenset({"accounts.services", "accounts.tasks"}): _ENQUEUE,
    frozenset({"leads.services.capture", "leads.tasks.capture"}): _ENQUEUE,
    frozenset({"leads.services.imports", "leads.tasks.imports"}): _ENQUEUE,
    frozenset({"leads.services.exports", "leads.tasks.exports"}): _ENQUEUE,
    frozenset(
        {"nurture.services", "nurture.services.dispatch", "nurture.services.sends", "nurture.tasks"}
    ): _ENQUEUE + "; the dispatcher hands its new messages to the send side (sends.enqueue_sends)",
    frozenset({"pipeline.services.sla", "pipeline.services.webhooks", "pipeline.tasks"}): _ENQUEUE,
    frozenset({"scoring.selectors", "scoring.services", "scoring.tasks", "scoring.versions"}): (
        _ENQUEUE + "; rule-set versions read live rules from selectors, which describe "
        "versions, and start rescores through services"
    ),
}


def strongly_connected(graph: grimp.ImportGraph) -> list[frozenset[str]]:
    """Tarjan's algorithm (iterative) over the direct imports; components of 2+ modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[frozenset[str]] = []
    counter = 0
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = edges[node]
            if i < len(targets):
                work.append((node, i + 1))
                target = targets[i]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def cycle_edges(graph: grimp.ImportGraph, component: frozenset[str]) -> list[str]:
    lines = []
    for importer in sorted(component):
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & component):
            details = graph.get_import_details(importer=importer, imported=imported)
            where = ", ".join(f"l.{d['line_number']}" for d in details)
            lines.append(f"    {importer} -> {imported} ({where})")
    return lines


def main() -> int:
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    cycles = strongly_connected(graph)
    failed = False
    for component in sorted(cycles, key=sorted):
        if component in ALLOWED:
            print(f"allowed cycle ({ALLOWED[component]}):")
        else:
            failed = True
            print("import cycle between files:")
        print("\n".join(cycle_edges(graph, component)))
    for component in sorted(set(ALLOWED) - set(cycles), key=sorted):
        failed = True
        print(f"ALLOWED lists a cycle that is no more; remove it: {sorted(component)}")
    print(f"{len(graph.modules)} modules, {len(cycles)} cycle(s).")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
