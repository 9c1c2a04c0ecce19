"""Slow: the standing mutation check. Every mutant of catalogue.py must be killed by the fast
tests; prints the kill table (``pytest -m slow -s tests/mutation`` to see it live).

By hand: ``python -m tests.mutation [--only ID] [--list]``."""

from __future__ import annotations

import pytest

from .catalogue import MUTANTS
from .runner import MAX_WORKERS, Result, run_baseline, run_catalogue, table


@pytest.mark.slow
def test_every_mutant_is_killed() -> None:
    baseline = run_baseline(MUTANTS)
    assert baseline.status == "passed", f"the unmutated tests fail: {baseline.killer}"

    def progress(result: Result) -> None:
        print(f"  {result.id}: {result.status} ({result.seconds:.0f}s) {result.killer}", flush=True)

    results = run_catalogue(MUTANTS, workers=MAX_WORKERS, progress=progress)
    lines = list(table(results, MUTANTS))
    print("\n" + "\n".join(lines))
    bad = [r for r in results if not r.ok]
    assert not bad, "mutants not killed:\n" + "\n".join(
        line for line in lines if any(line.startswith(r.id + " ") for r in bad)
    )
