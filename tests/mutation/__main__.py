"""``python -m tests.mutation [--list] [--only ID ...] [--workers 1|2] [--no-baseline]``

Runs the catalogue (or the named mutants) against the fast tests, prints the kill table, and
exits 1 if any mutant survives, errs or is pending."""

from __future__ import annotations

import argparse
import sys

from .catalogue import EQUIVALENT, MUTANTS, by_id
from .runner import DEFAULT_TIMEOUT, MAX_WORKERS, Result, is_pending, run_baseline, run_catalogue, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__.splitlines()[2])
    parser.add_argument("--list", action="store_true", help="list the catalogue and exit")
    parser.add_argument("--only", action="append", metavar="ID", help="run only this mutant (repeatable)")
    parser.add_argument("--workers", type=int, default=MAX_WORKERS, help=f"parallel mutants (at most {MAX_WORKERS})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per mutant")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    args = parser.parse_args(argv)

    if args.list:
        for mutant in MUTANTS:
            files = ", ".join(sorted({e.file for e in mutant.edits}))
            if is_pending(mutant):
                files += f" (pending: awaits {mutant.awaits})"
            print(f"{mutant.id:<40} {mutant.rule}\n{'':<40} {files}\n{'':<40} tests: {' '.join(mutant.tests)}")
        print(f"\n{len(MUTANTS)} mutants; left out as equivalent:")
        for what, why in EQUIVALENT:
            print(f"- {what}: {why}")
        return 0
    try:
        mutants = [by_id(i) for i in args.only] if args.only else list(MUTANTS)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    if not args.no_baseline:
        baseline = run_baseline(mutants, timeout=args.timeout)
        print(f"baseline: {baseline.status} in {baseline.seconds:.0f}s {baseline.killer}", flush=True)
        if baseline.status != "passed":
            print("the unmutated tests fail: no kill would mean anything", file=sys.stderr)
            return 1

    def progress(result: Result) -> None:
        print(f"  {result.id}: {result.status} ({result.seconds:.0f}s) {result.killer}", flush=True)

    results = run_catalogue(mutants, workers=args.workers, timeout=args.timeout, progress=progress)
    print()
    for line in table(results, mutants):
        print(line)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
