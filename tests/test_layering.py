"""The import rules of DESIGN.md: consensus/ is sans-IO and imports nothing of ours above it;
network/ never imports sequencing/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_CONSENSUS = {
    "trio", "anyio", "asyncio", "socket", "selectors", "time", "sqlite3", "threading",
    "subprocess", "os", "network", "sequencing", "datetime",
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", python_files("consensus"), ids=lambda p: str(p.relative_to(ROOT)))
def test_consensus_is_sans_io(path: Path) -> None:
    bad = imported_roots(path) & FORBIDDEN_IN_CONSENSUS
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", python_files("network"), ids=lambda p: str(p.relative_to(ROOT)))
def test_network_does_not_import_sequencing(path: Path) -> None:
    assert "sequencing" not in imported_roots(path)


def test_the_checker_itself_flags_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import trio\nfrom time import monotonic\n")
    assert imported_roots(sample) & FORBIDDEN_IN_CONSENSUS == {"trio", "time"}
