"""A committed block's slices replayed from its batches and its tx ids (``block_content.replay``,
what the ledger reads when it stored the batch bodies rather than the payloads again) are exactly
the slices the split assembled, whatever the window skipped; ids that do not come back are refused."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from seq_helpers import blocks_of_batches

from sequencing.rollup.batches import Batch
from sequencing.rollup.block_content import ReplayMismatch, assemble, replay
from sequencing.rollup.transactions import Bundle, Transaction, item_txs
from sequencing.rollup.tx_window import SeenBefore


def window_of(batches: list[Batch], rnd: random.Random) -> SeenBefore:
    """Some of the batches' transactions as committed before the block (its window)."""
    ids = [t.id for b in batches for item in b.items() for t in item_txs(item)]
    return SeenBefore(None, 0, -1, [set(rnd.sample(ids, rnd.randint(0, len(ids))))])


@given(blocks_of_batches(), st.randoms(use_true_random=False))
def test_replay_gives_back_the_assembled_slices(batches: list[Batch], rnd: random.Random) -> None:
    content = assemble(batches, window_of(batches, rnd))
    assert replay(batches, content.tx_ids) == content.slices
    decoded = [Batch.decode(b.body, len(b.body)) for b in batches]  # as the ledger reads them
    assert replay(decoded, content.tx_ids) == content.slices


def example() -> tuple[list[Batch], SeenBefore]:
    """Duplicates inside the block, a window skip, a bundle taken and one skipped whole."""
    a = [Transaction(r, b"a%d-%d" % (r, i)) for r in (1, 3, 5) for i in range(70)]
    before = Transaction(5, b"committed before")
    first = Batch.of(0, 1, 0, (*a[:120], before, Bundle((Transaction(3, b"b0"), Transaction(5, b"b1")))))
    second = Batch.of(1, 1, 0, (*a[100:], Transaction(7, b"x"), Bundle((a[0], Transaction(7, b"new")))))
    return [first, second], SeenBefore(None, 0, -1, [{before.id}])


def test_replay_example() -> None:
    batches, before = example()
    content = assemble(batches, before)
    assert [r for r, _ in content.slices] == [1, 3, 5, 7] and content.tx_count == 210 + 2 + 1
    assert replay(batches, content.tx_ids) == content.slices


def test_ids_that_do_not_come_back_are_refused() -> None:
    """Ids in another order, an id no batch carries, a batch missing: refused. (Ids left out are
    replayed as skipped, like the window's: the ledger checks each slice's stored count.)"""
    batches, before = example()
    ids = assemble(batches, before).tx_ids
    with pytest.raises(ReplayMismatch):
        replay(batches, ids[32:64] + ids[:32] + ids[64:])  # two swapped
    with pytest.raises(ReplayMismatch):
        replay(batches, ids + Transaction(9, b"in no batch").id)
    with pytest.raises(ReplayMismatch):
        replay(batches[:1], ids)
    assert replay(batches, ids[32:]) != assemble(batches, before).slices  # one left out: another slice
