"""Fast: the mutation catalogue still matches the code, so no mutant silently becomes a no-op.

Code under consensus/ and sequencing/ changes often; a snippet that no longer occurs (or occurs
twice) must fail here, in the default suite, not hours later in the slow mutation run."""

from __future__ import annotations

import pytest

from .catalogue import EQUIVALENT, MUTANTS, Mutant
from .runner import apply, copy_tree, is_pending, occurrences, present

ACTIVE = [m for m in MUTANTS if not is_pending(m)]


def test_catalogue_is_large_and_ids_unique() -> None:
    ids = [m.id for m in MUTANTS]
    assert len(ids) == len(set(ids)), "duplicate mutant ids"
    assert len(ACTIVE) >= 30


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.id)
def test_every_snippet_occurs_exactly_once(mutant: Mutant) -> None:
    assert mutant.edits and mutant.rule and mutant.tests
    if is_pending(mutant):
        pytest.skip(f"{mutant.id} awaits {mutant.awaits}")
    for edit in mutant.edits:
        assert edit.original != edit.replacement
        count = occurrences(edit)
        assert count == 1, (
            f"{mutant.id}: {edit.file} contains the snippet {count} times (expected once). The code "
            f"changed: update tests/mutation/catalogue.py to mutate the same rule.\n{edit.original!r}"
        )


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.id)
def test_kill_tests_exist(mutant: Mutant) -> None:
    """The folder swept last must exist; files named before it may still be on their way."""
    assert present(mutant.tests) and present(mutant.tests[-1:]), f"{mutant.id}: {mutant.tests}"


def test_equivalent_mutants_have_reasons() -> None:
    for what, why in EQUIVALENT:
        assert what and len(why) > 40


def test_every_mutant_applies_and_compiles(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """One copy, each mutant applied in turn to fresh file texts (apply also compiles them)."""
    tree = copy_tree(tmp_path)
    originals = {e.file: (tree / e.file).read_text(encoding="utf-8") for m in ACTIVE for e in m.edits}
    for mutant in ACTIVE:
        apply(mutant, tree)
        for file in {e.file for e in mutant.edits}:
            assert (tree / file).read_text(encoding="utf-8") != originals[file]
            (tree / file).write_text(originals[file], encoding="utf-8")
