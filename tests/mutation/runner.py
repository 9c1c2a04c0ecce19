"""Apply one mutant to a temporary copy of the tree and run its fast tests there.

The copy gets its own PYTHONPATH, so imports and any replica subprocess a test starts use the
mutated code; the original tree is never written. Outcomes: ``killed`` (a test failed),
``survived`` (all passed), ``timeout`` (counted as killed: the mutant hangs the tests), ``error``
(the mutant could not be applied or pytest could not run: a catalogue defect) and ``pending``
(the fix it guards is not merged yet, see catalogue.py). Only killed and timeout pass the check. A kill is
confirmed by rerunning the killing test alone; if it then passes (a test flaky under load), the
whole selection runs once more and that run decides. The baseline (no mutant) is treated the same.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from .catalogue import Edit, Mutant

ROOT = Path(__file__).resolve().parents[2]
PYTEST_ARGS = ("-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--hypothesis-seed=0")
DEFAULT_TIMEOUT = 900.0
MAX_WORKERS = 2  # the suite starts real processes and the machine is shared: never more
PASSING = ("killed", "timeout")

_SKIP_ANYWHERE = {".git", ".venv", "__pycache__", ".hypothesis", ".pytest_cache", ".mypy_cache",
                  ".ruff_cache", "build", "dist"}
_SKIP_AT_ROOT = {"data", "run"}
_SKIP_SUFFIXES = (".egg-info", ".sqlite", ".sqlite-wal", ".sqlite-shm")


class MutantError(Exception):
    """The mutant cannot be applied to this tree (its snippet is gone or ambiguous)."""


@dataclass(frozen=True, slots=True)
class Result:
    id: str
    status: str  # killed | survived | timeout | error | pending
    seconds: float
    killer: str = ""  # the first failing test, or the reason for error/pending

    @property
    def ok(self) -> bool:
        return self.status in PASSING


def occurrences(edit: Edit, root: Path = ROOT) -> int:
    path = root / edit.file
    if not path.is_file():
        return 0
    return path.read_text(encoding="utf-8").count(edit.original)


def present(tests: Iterable[str], root: Path = ROOT) -> list[str]:
    """The test paths that exist (a catalogue may name a test file another branch is adding)."""
    return [t for t in tests if (root / t.split("::")[0]).exists()]


def is_pending(mutant: Mutant, root: Path = ROOT) -> bool:
    """A mutant guarding a fix not merged yet: some snippet of it does not occur at all."""
    return bool(mutant.awaits) and any(occurrences(edit, root) == 0 for edit in mutant.edits)


def mutated_source(edit: Edit, root: Path = ROOT) -> str:
    """The file's text with the edit applied; raises MutantError unless the snippet occurs once."""
    count = occurrences(edit, root)
    if count != 1:
        raise MutantError(f"{edit.file}: snippet occurs {count} times, expected once: {edit.original!r}")
    text = (root / edit.file).read_text(encoding="utf-8")
    return text.replace(edit.original, edit.replacement, 1)


def copy_tree(destination: Path, root: Path = ROOT) -> Path:
    """Copy the sources, tests, docs and scripts (no VCS, caches, databases or run folders)."""
    top = root.resolve()

    def ignore(directory: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n in _SKIP_ANYWHERE or n.endswith(_SKIP_SUFFIXES)}
        if Path(directory).resolve() == top:
            skip |= {n for n in names if n in _SKIP_AT_ROOT}
        return skip

    target = destination / "tree"
    shutil.copytree(top, target, ignore=ignore, symlinks=True)
    return target


def apply(mutant: Mutant, tree: Path) -> None:
    """Apply every edit of ``mutant`` to the copy at ``tree`` (checked against the copy itself)."""
    texts: dict[str, str] = {}
    for edit in mutant.edits:
        current = texts.get(edit.file)
        if current is None:
            texts[edit.file] = mutated_source(edit, tree)
        else:
            if current.count(edit.original) != 1:
                raise MutantError(f"{edit.file}: second edit's snippet is not unique: {edit.original!r}")
            texts[edit.file] = current.replace(edit.original, edit.replacement, 1)
    for file, text in texts.items():
        try:
            compile(text, file, "exec")
        except SyntaxError as exc:
            raise MutantError(f"{file}: the mutated source does not compile: {exc}") from None
        (tree / file).write_text(text, encoding="utf-8")


_FIRST_FAILURE = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def run_tests(tree: Path, tests: Iterable[str], timeout: float) -> tuple[str, str]:
    """Run pytest in ``tree``; returns (status, first failing test or output tail)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("ORDO_HYPOTHESIS_PROFILE", None)
    proc = subprocess.Popen(
        [sys.executable, *PYTEST_ARGS, *tests], cwd=tree, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the pytest we started and the replicas it spawned
        proc.communicate()
        return "timeout", f"no verdict within {timeout:.0f} s"
    tail = " | ".join(output.strip().splitlines()[-3:])
    if proc.returncode == 0:
        return "survived", ""
    if proc.returncode == 1:
        found = _FIRST_FAILURE.search(output)
        return "killed", found.group(1) if found else tail
    return "error", f"pytest exit {proc.returncode}: {tail}"


def run_mutant(mutant: Mutant, *, timeout: float = DEFAULT_TIMEOUT) -> Result:
    start = time.monotonic()
    if is_pending(mutant):
        return Result(mutant.id, "pending", 0.0, f"awaits {mutant.awaits}: its snippet is not in the tree")
    with tempfile.TemporaryDirectory(prefix=f"ordo-mutant-{mutant.id}-") as tmp:
        tree = copy_tree(Path(tmp))
        try:
            apply(mutant, tree)
        except MutantError as exc:
            return Result(mutant.id, "error", time.monotonic() - start, str(exc))
        tests = present(mutant.tests, tree)
        if not tests:
            return Result(mutant.id, "error", time.monotonic() - start, "none of its tests exist")
        status, detail = run_tests(tree, tests, timeout)
        if status == "killed" and "::" in detail and run_tests(tree, [detail], timeout)[0] == "survived":
            # the killer passes alone: a flaky test under load, not the mutant; decide by a rerun
            status, detail = run_tests(tree, tests, timeout)
    return Result(mutant.id, status, time.monotonic() - start, detail)


def run_baseline(mutants: Iterable[Mutant], *, timeout: float = DEFAULT_TIMEOUT) -> Result:
    """The union of the catalogue's tests on the unmutated copy: must pass, or kills mean nothing."""
    tests = present(sorted({t for mutant in mutants for t in mutant.tests}))
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ordo-mutant-baseline-") as tmp:
        tree = copy_tree(Path(tmp))
        status, detail = run_tests(tree, tests, timeout)
        if status == "killed" and "::" in detail and run_tests(tree, [detail], timeout)[0] == "survived":
            flaky = detail  # fails in the crowd, passes alone: rerun everything once
            status, detail = run_tests(tree, tests, timeout)
            detail = detail or f"(flaky on the first run: {flaky})"
    status = "passed" if status == "survived" else status
    return Result("(baseline, unmutated)", status, time.monotonic() - start, detail)


def run_catalogue(mutants: Iterable[Mutant], *, workers: int = MAX_WORKERS,
                  timeout: float = DEFAULT_TIMEOUT,
                  progress: Callable[[Result], None] | None = None) -> list[Result]:
    """Every mutant, at most ``MAX_WORKERS`` at a time; results in catalogue order."""
    mutants = list(mutants)
    workers = max(1, min(workers, MAX_WORKERS))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_mutant, mutant, timeout=timeout): mutant.id for mutant in mutants}
        done: dict[str, Result] = {}
        for future in as_completed(futures):
            result = future.result()
            done[result.id] = result
            if progress is not None:
                progress(result)
    return [done[mutant.id] for mutant in mutants]


def table(results: Iterable[Result], mutants: Iterable[Mutant] = ()) -> Iterator[str]:
    rules = {m.id: m.rule for m in mutants}
    rows = list(results)
    width = max((len(r.id) for r in rows), default=10)
    yield f"{'mutant':<{width}}  {'status':<8}  {'time':>6}  killed by / rule"
    for r in rows:
        what = r.killer if r.ok else f"{rules.get(r.id, '')}" + (f" [{r.killer}]" if r.killer else "")
        yield f"{r.id:<{width}}  {r.status:<8}  {r.seconds:5.0f}s  {what}"
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    yield "total: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
