"""The import rules of docs/ARCHITECTURE.md ("Module map", "Arrows between folders"): consensus/ is
sans-IO and imports nothing of ours above it; network/ never imports sequencing/; inside sequencing/,
rollup/ is pure (no I/O module, nothing of sequencing/ outside rollup/ but ``config``'s limits),
client/ never reaches the replica side (replica/, storage/, api/, cluster/, cli/), and the modules
of sequencing/ import each other without circles.

Every import counts: module level, under ``if TYPE_CHECKING:`` and inside functions, relative or
absolute. Each checker is also run on a small synthetic package (tmp_path) to show it can fail."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_CONSENSUS = {
    "trio", "anyio", "asyncio", "socket", "selectors", "time", "sqlite3", "threading",
    "subprocess", "os", "network", "sequencing", "datetime",
}
# the one exception: encoding.py keeps a msgpack Packer per thread (threading.local), a cache of the
# encoder that no result depends on (see its pack())
CONSENSUS_EXCEPTIONS = {"encoding.py": {"threading"}}
# what a pure rule module must not touch: clocks, files, processes, sockets, HTTP, our I/O layers
FORBIDDEN_IN_ROLLUP = {
    "trio", "anyio", "asyncio", "socket", "selectors", "ssl", "time", "datetime", "sqlite3",
    "threading", "multiprocessing", "subprocess", "signal", "os", "shutil", "tempfile", "glob",
    "pathlib", "io", "random", "secrets", "logging", "httpx", "h11", "hypercorn", "starlette",
    "prometheus_client", "rich", "network",
}
# the only modules of sequencing/ outside rollup/ that rollup/ may reach: config (for ``Limits``) and
# the id parser config uses
ROLLUP_MAY_IMPORT = ("sequencing.rollup", "sequencing.config", "sequencing.ids")
# docs/ARCHITECTURE.md, "Arrows between folders": which folder (or top module) of sequencing/ may
# import which; a module's own folder is always allowed
_BELOW_API = {"replica", "storage", "rollup", "keys", "config", "ids"}
FOLDER_MAY_IMPORT: dict[str, set[str]] = {
    "cli": {"cluster", "api", "client", *_BELOW_API},
    "cluster": {"api", "client", *_BELOW_API},
    "api": _BELOW_API,
    "replica": {"storage", "rollup", "keys", "config", "ids"},
    "storage": {"rollup", "keys", "config", "ids"},
    "client": {"rollup", "keys", "config", "ids"},
    "rollup": {"config", "ids"},
    "keys": {"config", "ids"},
    "config": {"ids"},
    "ids": set(),
}
CLIENT_MUST_NOT_REACH = ("sequencing.replica", "sequencing.storage", "sequencing.api",
                         "sequencing.cluster", "sequencing.cli")


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def python_files(package: str, root: Path = ROOT) -> list[Path]:
    return sorted((root / package).rglob("*.py"))


# -- the module import graph ---------------------------------------------------------------------


def module_files(package: str, root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` (packages as their __init__)."""
    out = {}
    for path in python_files(package, root):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imported_modules(path: Path, module: str, known: Iterable[str] = ()) -> set[str]:
    """The absolute dotted names ``path`` (module ``module``) imports, wherever the import
    statement is. ``from X import a`` names ``X.a`` when that is a module in ``known``, else ``X``."""
    known = set(known)
    is_package = path.name == "__init__.py"
    package = module.split(".") if is_package else module.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
    return out


def import_graph(package: str, root: Path = ROOT) -> dict[str, set[str]]:
    """Edges between the modules of ``package`` only."""
    files = module_files(package, root)
    return {name: {m for m in imported_modules(path, name, files) if m in files and m != name}
            for name, path in files.items()}


def import_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One shortest cycle (``[a, b, ..., a]``) through each module that lies on a cycle, deduplicated;
    empty when the graph is acyclic."""
    cycles: dict[frozenset[str], list[str]] = {}
    for start in sorted(graph):
        # breadth-first from start's successors back to start: the shortest cycle through start
        parent: dict[str, str] = {}
        frontier = [start]
        found = False
        while frontier and not found:
            nxt = []
            for node in frontier:
                for succ in sorted(graph.get(node, ())):
                    if succ == start:
                        path = [node]
                        while path[-1] != start:
                            path.append(parent[path[-1]])
                        cycle = [start, *reversed(path[:-1]), start]
                        cycles.setdefault(frozenset(cycle), cycle)
                        found = True
                        break
                    if succ not in parent and succ != start:
                        parent[succ] = node
                        nxt.append(succ)
                if found:
                    break
            frontier = nxt
    return sorted(cycles.values())


def reachable(graph: Mapping[str, set[str]], start: str) -> dict[str, list[str]]:
    """Every module reachable from ``start``, with one import path to it."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for succ in sorted(graph.get(node, ())):
                if succ not in paths:
                    paths[succ] = [*paths[node], succ]
                    nxt.append(succ)
        frontier = nxt
    return paths


def under(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def forbidden_reach(graph: Mapping[str, set[str]], sources: Iterable[str],
                    forbidden: Iterable[str]) -> list[str]:
    """Import paths from a module in ``sources`` to one under a ``forbidden`` prefix (direct or
    through other modules of the graph)."""
    bad = []
    for source in sorted(sources):
        for target, path in sorted(reachable(graph, source).items()):
            if under(target, forbidden):
                bad.append(" -> ".join(path))
    return bad


def folder_of(module: str, package: str) -> str:
    """``pkg.replica.node`` -> ``replica``; ``pkg.config`` -> ``config``; ``pkg`` -> ``""``."""
    parts = module.split(".")
    return parts[len(package.split("."))] if len(parts) > len(package.split(".")) else ""


def folder_violations(graph: Mapping[str, set[str]], package: str,
                      allowed: Mapping[str, set[str]]) -> list[str]:
    """Direct imports from one folder of ``package`` into another that ``allowed`` does not list
    (a folder missing from ``allowed`` may import nothing outside itself)."""
    bad = []
    for source in sorted(graph):
        for target in sorted(graph[source]):
            a, b = folder_of(source, package), folder_of(target, package)
            if a and b and a != b and b not in allowed.get(a, set()):
                bad.append(f"{source} -> {target} ({a}/ may not import {b})")
    return bad


def cycle_report(cycles: list[list[str]]) -> str:
    return f"{len(cycles)} import circle(s):\n" + "\n".join(" -> ".join(c) for c in cycles)


# -- consensus/ and network/ ----------------------------------------------------------------------


@pytest.mark.parametrize("path", python_files("consensus"), ids=lambda p: str(p.relative_to(ROOT)))
def test_consensus_is_sans_io(path: Path) -> None:
    bad = imported_roots(path) & FORBIDDEN_IN_CONSENSUS - CONSENSUS_EXCEPTIONS.get(path.name, set())
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", python_files("network"), ids=lambda p: str(p.relative_to(ROOT)))
def test_network_does_not_import_sequencing(path: Path) -> None:
    assert "sequencing" not in imported_roots(path)


def test_consensus_and_network_modules_never_import_sequencing() -> None:
    for package in ("consensus", "network"):
        files = module_files(package)
        bad = {name: sorted(m for m in imported_modules(path, name) if under(m, ["sequencing"]))
               for name, path in files.items()}
        assert not {k: v for k, v in bad.items() if v}, bad


def test_the_checker_itself_flags_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import trio\nfrom time import monotonic\n")
    assert imported_roots(sample) & FORBIDDEN_IN_CONSENSUS == {"trio", "time"}


# -- sequencing/rollup/: pure ----------------------------------------------------------------------


@pytest.mark.parametrize("path", python_files("sequencing/rollup"), ids=lambda p: str(p.relative_to(ROOT)))
def test_rollup_imports_no_io_module(path: Path) -> None:
    name = {p: n for n, p in module_files("sequencing").items()}[path]
    roots = {m.split(".")[0] for m in imported_modules(path, name)}
    bad = roots & FORBIDDEN_IN_ROLLUP
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_rollup_imports_nothing_of_sequencing_outside_rollup_but_config() -> None:
    graph = import_graph("sequencing")
    rollup = [m for m in graph if under(m, ["sequencing.rollup"])]
    assert rollup
    bad = [" -> ".join(path) for source in sorted(rollup)
           for target, path in sorted(reachable(graph, source).items()) if not under(target, ROLLUP_MAY_IMPORT)]
    assert not bad, "sequencing/rollup/ imports outside rollup/ and config:\n" + "\n".join(bad)
    # config, the one exception, must itself stay below rollup (it imports only the id parser, which
    # imports nothing of sequencing/)
    assert graph["sequencing.config"] <= {"sequencing.ids"}, graph["sequencing.config"]
    assert not graph["sequencing.ids"], graph["sequencing.ids"]


# -- sequencing/: folders import downwards only ---------------------------------------------------


def test_every_sequencing_folder_is_in_the_arrow_table() -> None:
    folders = {folder_of(m, "sequencing") for m in module_files("sequencing")} - {""}
    assert folders == set(FOLDER_MAY_IMPORT), "update FOLDER_MAY_IMPORT and docs/ARCHITECTURE.md"


def test_sequencing_folders_import_only_what_the_arrow_table_allows() -> None:
    bad = folder_violations(import_graph("sequencing"), "sequencing", FOLDER_MAY_IMPORT)
    assert not bad, "imports against docs/ARCHITECTURE.md's arrows:\n" + "\n".join(bad)


# -- sequencing/client/: a rollup team's library, no replica side ------------------------------------


def test_client_never_reaches_the_replica_side() -> None:
    graph = import_graph("sequencing")
    client = [m for m in graph if under(m, ["sequencing.client"])]
    assert client
    bad = forbidden_reach(graph, client, CLIENT_MUST_NOT_REACH)
    assert not bad, "sequencing/client/ reaches the replica side:\n" + "\n".join(bad)


# -- sequencing/: no import circles ------------------------------------------------------------------


def test_sequencing_has_no_import_circles() -> None:
    cycles = import_cycles(import_graph("sequencing"))
    assert not cycles, cycle_report(cycles)


# -- teeth: the graph checkers on a synthetic package ------------------------------------------------


def _package(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_teeth_cycles_are_found_through_every_kind_of_import(tmp_path: Path) -> None:
    _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from .b import thing\n",
        # the way back only under TYPE_CHECKING: still a circle of the module graph
        "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\nthing = 1\n",
        "pkg/sub/__init__.py": "",
        # a function-local relative import two levels up
        "pkg/sub/c.py": "def f():\n    from .. import d\n",
        "pkg/d.py": "import pkg.sub.c\n",
        "pkg/e.py": "from . import a\nimport os\n",  # on no cycle: reaches one only
    })
    graph = import_graph("pkg", tmp_path)
    assert graph["pkg.sub.c"] == {"pkg.d"} and graph["pkg.e"] == {"pkg.a"}
    cycles = import_cycles(graph)
    assert cycles == [["pkg.a", "pkg.b", "pkg.a"], ["pkg.d", "pkg.sub.c", "pkg.d"]]
    assert "pkg.a -> pkg.b -> pkg.a" in cycle_report(cycles)
    # and an acyclic package passes
    _package(tmp_path, {"pkg/b.py": "thing = 1\n", "pkg/d.py": "x = 1\n"})
    assert import_cycles(import_graph("pkg", tmp_path)) == []


def test_teeth_forbidden_reach_is_found_directly_and_through_another_module(tmp_path: Path) -> None:
    _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/client/__init__.py": "from .lib import X\n",
        "pkg/client/lib.py": "def f():\n    from ..rules import r\n",
        "pkg/rules.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.replica.node import N\n",
        "pkg/replica/__init__.py": "",
        "pkg/replica/node.py": "import time\n",
    })
    graph = import_graph("pkg", tmp_path)
    bad = forbidden_reach(graph, ["pkg.client", "pkg.client.lib"], ["pkg.replica"])
    assert "pkg.client.lib -> pkg.rules -> pkg.replica.node" in bad
    assert forbidden_reach(graph, ["pkg.rules"], ["pkg.replica"]) == ["pkg.rules -> pkg.replica.node"]
    assert forbidden_reach(graph, ["pkg.replica.node"], ["pkg.client"]) == []
    # the arrow table: rules -> replica is a violation (client -> rules is allowed here)
    allowed = {"client": {"rules"}, "rules": set(), "replica": set()}
    assert folder_violations(graph, "pkg", allowed) == [
        "pkg.rules -> pkg.replica.node (rules/ may not import replica)"]
    assert folder_violations(graph, "pkg", {**allowed, "rules": {"replica"}}) == []
    # the I/O check sees a module-level import of a forbidden root
    node = tmp_path / "pkg/replica/node.py"
    assert {m.split(".")[0] for m in imported_modules(node, "pkg.replica.node")} & FORBIDDEN_IN_ROLLUP == {"time"}
