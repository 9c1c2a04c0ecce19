"""The split's window of recently committed transactions (sequencing/rollup/tx_window.py).

The property: whatever the block sizes, repeats and the executor's lag, what
``RecentTxWindow.before`` says a block skips is exactly what the rule of docs/PROTOCOL.md section
12 computes from the chain alone (a brute-force reference over every committed block). Its teeth:
broken windows (no committed part, eviction that forgets an id held twice, a window one block
short) are caught by the same checker."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sequencing.rollup.batches import Batch
from sequencing.rollup.block_content import assemble
from sequencing.rollup.transactions import Bundle, Transaction
from sequencing.rollup.tx_window import Ancestor, RecentTxWindow, SeenBefore, WindowHole


def tid(n: int) -> bytes:
    return n.to_bytes(32, "big")


def blob(ids: list[int]) -> bytes:
    return b"".join(tid(i) for i in ids)


def reference(chain: list[list[int]], height: int, blocks: int, txs: int) -> set[int]:
    """The rule, from the chain alone: heights height-1, height-2, ... at most ``blocks`` of them,
    stopping before the block that would bring the count above ``txs``."""
    out: set[int] = set()
    room = txs
    for h in range(height - 1, max(height - blocks, 1) - 1, -1):
        ids = chain[h - 1]
        if len(ids) > room:
            break
        room -= len(ids)
        out.update(ids)
    return out


def ancestors_of(chain: list[list[int]], first: int, height: int) -> list[Ancestor]:
    return [Ancestor(blob(chain[h - 1]), {tid(i) for i in chain[h - 1]}) for h in range(first, height)]


Check = Callable[[SeenBefore, set[int], int], None]


def check_against_reference(window_factory: Callable[[], RecentTxWindow], chain: list[list[int]],
                            lags: list[int], blocks: int, txs: int, universe: int) -> None:
    """Feed the chain's commits to the window (the core ahead of the executor by ``lags``), and at
    every step compare, for the executor's next block and for blocks above the committed tip with
    uncommitted ancestors, the window's answer for every id with the reference."""
    window = window_factory()
    executed = 0
    for committed in range(1, len(chain) + 1):
        ids = chain[committed - 1]
        window.committed(committed, blob(ids), [tid(i) for i in ids])
        target = max(executed, committed - lags[committed - 1])
        while executed < target:
            executed += 1
            window.executed(executed, blob(chain[executed - 1]))
            assert_same(window.before(executed + 1) if executed + 1 <= committed else None,
                        chain, executed + 1, blocks, txs, universe)
        for ahead in range(committed + 1, min(committed + 3, len(chain) + 1) + 1):
            seen = window.before(ahead, ancestors_of(chain, committed + 1, ahead))
            assert_same(seen, chain, ahead, blocks, txs, universe)


def assert_same(seen: SeenBefore | None, chain: list[list[int]], height: int, blocks: int, txs: int,
                universe: int) -> None:
    if seen is None:
        return
    expected = reference(chain, height, blocks, txs)
    got = {i for i in range(universe) if tid(i) in seen}
    assert got == expected, f"height {height}: skips {sorted(got ^ expected)} wrongly"
    ids = [tid(i) for i in range(universe)]
    assert seen.isdisjoint(ids) == (not expected)


chains = st.integers(min_value=3, max_value=12).flatmap(lambda universe: st.tuples(
    st.just(universe),
    st.lists(st.lists(st.integers(0, universe - 1), max_size=4, unique=True), min_size=1, max_size=14),
))


@settings(max_examples=150, deadline=None)
@given(chains, st.lists(st.integers(0, 3), min_size=14, max_size=14), st.integers(1, 5), st.integers(1, 9))
def test_the_window_skips_exactly_what_the_rule_computes_from_the_chain(
        universe_chain: tuple[int, list[list[int]]], lags: list[int], blocks: int, txs: int) -> None:
    universe, chain = universe_chain
    check_against_reference(lambda: RecentTxWindow(blocks=blocks, txs=txs), chain, lags, blocks, txs, universe)


class NoCommittedPart(RecentTxWindow):
    def before(self, height: int, ancestors: list[Ancestor] | tuple[Ancestor, ...] = ()) -> SeenBefore:
        super().before(height, ancestors)
        return SeenBefore(None, 0, -1, [a.ids for a in ancestors])


class ForgetsRepeats(RecentTxWindow):
    """Its eviction drops every id of the leaving height, also those a higher height still holds."""

    def _forget(self, ids: AbstractSet[bytes]) -> None:
        self.recent.difference_update(ids)


class OneBlockShort(RecentTxWindow):
    def before(self, height: int, ancestors: list[Ancestor] | tuple[Ancestor, ...] = ()) -> SeenBefore:
        self.blocks -= 1
        try:
            return super().before(height, ancestors)
        finally:
            self.blocks += 1


@pytest.mark.parametrize("broken", [NoCommittedPart, ForgetsRepeats, OneBlockShort])
def test_teeth_broken_windows_are_caught(broken: type[RecentTxWindow]) -> None:
    caught = 0
    for seed in range(300):
        import random
        rnd = random.Random(seed)
        universe = rnd.randint(3, 6)
        chain = [rnd.sample(range(universe), rnd.randint(0, 3)) for _ in range(rnd.randint(3, 12))]
        lags = [rnd.randint(0, 3) for _ in chain]
        blocks, txs = rnd.randint(2, 5), rnd.randint(2, 9)
        try:
            check_against_reference(lambda b=blocks, t=txs: broken(blocks=b, txs=t), chain, lags, blocks, txs, universe)
        except AssertionError:
            caught += 1
    assert caught, f"{broken.__name__} passed every chain: the checker has no teeth"


def test_a_committed_height_not_known_yet_is_a_hole_until_the_executor_brings_it() -> None:
    window = RecentTxWindow(blocks=10, txs=100)
    window.committed(1, blob([1]))
    window.committed(2, None)  # committed, content not here (it came by catch-up)
    window.committed(3, blob([3]))
    with pytest.raises(WindowHole):
        window.before(4)
    assert window.before(2).isdisjoint([tid(3)]) and tid(1) in window.before(2)
    window.executed(1, blob([1]))
    window.executed(2, blob([2]))
    seen = window.before(4)
    assert all(tid(i) in seen for i in (1, 2, 3)) and tid(4) not in seen


def test_start_loads_the_heights_a_window_above_the_tip_reaches() -> None:
    window = RecentTxWindow(blocks=3, txs=100)
    window.start(5, [(3, blob([3])), (4, b""), (5, blob([5, 6]))])
    seen = window.before(6)
    assert all(tid(i) in seen for i in (3, 5, 6))
    window.committed(6, blob([7]))
    window.executed(6, blob([7]))
    assert tid(3) not in window.before(7) and len(window) == 3, "height 3 left: 4 blocks below 7"
    with pytest.raises(ValueError):
        RecentTxWindow(blocks=3, txs=100).start(5, [(3, b""), (5, b"")])


def batch_of(author: int, items: list[Transaction | Bundle]) -> Batch:
    return Batch.of(author, 1, 0, items)


def test_the_split_skips_a_transaction_of_the_window_and_a_bundle_holding_one_whole() -> None:
    old, new, partner = Transaction(1, b"old"), Transaction(1, b"new"), Transaction(2, b"partner")
    window = RecentTxWindow(blocks=5, txs=100)
    window.committed(1, old.id)
    content = assemble([batch_of(0, [old, new]), batch_of(1, [Bundle((partner, old))])], window.before(2))
    assert content.transactions() == [(1, b"new")] and content.bundles == ()
    assert assemble([batch_of(0, [old, new])]).transactions() == [(1, b"old"), (1, b"new")]
