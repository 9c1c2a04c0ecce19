"""The ids of recently committed transactions, so that the split drops a transaction committed
before (docs/PROTOCOL.md section 12, "Exactly once across replicas").

A block at height ``h`` skips every transaction whose id is in its *window*: the blocks of its own
chain at heights ``h - 1``, ``h - 2``, ... going back at most ``blocks`` heights and stopping
before the block that would bring the window's transaction count above ``txs``. The window is a
function of the chain alone, so every replica splits a block the same way; ``txs`` bounds memory
whatever the block sizes.

:class:`RecentTxWindow` holds the committed part: the ids of a contiguous range of committed
heights, a set per height (for the exact answer) and one set of them all (``recent``, for a C-level
test of a whole group in the common case; an id held at several heights is counted in ``_repeats``,
so that it stays while a higher height holds it). A committed height enters when
its content is known: at commit if this replica assembled the block (verified or proposed it),
else when the executor assembles it; heights are entered in order (a later height waits for an
earlier one). The uncommitted ancestors of a block are given to :meth:`RecentTxWindow.before` by
the caller (their contents). A height leaves the window once no block the executor has still to
assemble, nor any later block, can reach it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet

from consensus.encoding import DIGEST_SIZE


class WindowHole(Exception):
    """A height the window needs is committed but its transactions are not known yet (the
    executor has not assembled it): the block cannot be split until it has."""


class Ancestor:
    """An uncommitted ancestor's transactions (its content's ids), for :meth:`RecentTxWindow.before`."""

    __slots__ = ("count", "ids", "tx_ids")

    def __init__(self, tx_ids: bytes, ids: AbstractSet[bytes]) -> None:
        self.tx_ids = tx_ids
        self.ids = ids
        self.count = len(tx_ids) // DIGEST_SIZE


class SeenBefore:
    """The ids a block must skip: its window's (see the module docstring)."""

    __slots__ = ("_ancestors", "_high", "_low", "_window")

    def __init__(self, window: RecentTxWindow | None, low: int, high: int,
                 ancestors: Sequence[AbstractSet[bytes]]) -> None:
        self._window = window  # committed heights low..high count; None: none do
        self._low = low
        self._high = high
        self._ancestors = ancestors

    def isdisjoint(self, ids: Sequence[bytes]) -> bool:
        """Whether none of ``ids`` is in the window (C-level tests in the common case)."""
        if all(a.isdisjoint(ids) for a in self._ancestors):
            window = self._window
            if window is None or window.recent.isdisjoint(ids):
                return True
        return not any(tx_id in self for tx_id in ids)

    def __contains__(self, tx_id: object) -> bool:
        if any(tx_id in a for a in self._ancestors):
            return True
        window = self._window
        if window is None or not isinstance(tx_id, bytes) or tx_id not in window.recent:
            return False
        return window.held_between(tx_id, self._low, self._high)


NOTHING_BEFORE = SeenBefore(None, 0, -1, ())


class RecentTxWindow:
    def __init__(self, *, blocks: int, txs: int) -> None:
        if blocks < 0 or txs < 0:
            raise ValueError("the window's bounds must be >= 0")
        self.blocks = blocks
        self.txs = txs
        self.recent: set[bytes] = set()  # every id held (the union of _heights)
        self._repeats: dict[bytes, int] = {}  # an id held at n + 1 heights -> n
        self._heights: deque[AbstractSet[bytes]] = deque()  # ids of each height, lowest .. highest
        self._counts: deque[int] = deque()
        self.lowest = 1  # the height of _heights[0]
        self._ahead: dict[int, tuple[int, AbstractSet[bytes]]] = {}  # committed above a hole
        self._executed = 0  # the executor's height: what it still assembles is above it
        self._count = 0

    @property
    def highest(self) -> int:
        """The highest committed height whose ids are held (``lowest - 1`` if none)."""
        return self.lowest + len(self._heights) - 1

    def __len__(self) -> int:
        return self._count

    # -- filling -------------------------------------------------------------------------------

    def start(self, height: int, rows: Sequence[tuple[int, bytes]]) -> None:
        """At start-up: the ledger's committed ``height`` and the ids blobs of the heights just
        below and up to it (at least those a window reaching down from ``height + 1`` needs)."""
        self.recent.clear()
        self._repeats.clear()
        self._heights.clear()
        self._counts.clear()
        self._ahead.clear()
        self._count = 0
        self.lowest = height + 1 - len(rows)
        self._executed = height
        for expected, (row_height, tx_ids) in enumerate(rows, start=self.lowest):
            if row_height != expected:
                raise ValueError(f"ids of height {expected} missing (got {row_height})")
            self._append(*_held(tx_ids, None))
        self._evict()

    def committed(self, height: int, tx_ids: bytes | None, ids: Iterable[bytes] | None = None) -> None:
        """Height ``height`` is committed; its ids if this replica knows its content, else None
        (the executor brings them with :meth:`executed`)."""
        if height <= self.highest or tx_ids is None:
            return
        self._ahead[height] = _held(tx_ids, ids)
        self._drain()

    def executed(self, height: int, tx_ids: bytes, ids: Iterable[bytes] | None = None) -> None:
        """The executor assembled (or took) committed height ``height``: the heights it still has
        to assemble are above it, so lower heights may leave the window."""
        if height > self.highest and height not in self._ahead:
            self._ahead[height] = _held(tx_ids, ids)
            self._drain()
        self._executed = max(self._executed, height)
        self._evict()

    def _drain(self) -> None:
        while self.highest + 1 in self._ahead:
            self._append(*self._ahead.pop(self.highest + 1))
        self._evict()

    def _append(self, count: int, ids: AbstractSet[bytes]) -> None:
        recent = self.recent
        if not recent.isdisjoint(ids):  # committed before, outside that block's window
            repeats = self._repeats
            for tx_id in recent.intersection(ids):
                repeats[tx_id] = repeats.get(tx_id, 0) + 1
        recent.update(ids)
        self._heights.append(ids)
        self._counts.append(count)
        self._count += count

    def _evict(self) -> None:
        """Drop the lowest height while no block from ``executed + 1`` up can reach it: it is more
        than ``blocks`` below that block, or it and the heights above it up to ``executed`` hold
        more than ``txs`` transactions."""
        first_open = self._executed + 1
        held = self._count_through(self._executed)
        while self._heights and (self.lowest < first_open - self.blocks
                                 or (held > self.txs and self.lowest <= self._executed)):
            self._forget(self._heights.popleft())
            count = self._counts.popleft()
            self._count -= count
            held -= count
            self.lowest += 1

    def _forget(self, ids: AbstractSet[bytes]) -> None:
        """The lowest height leaves: its ids go, except those also held higher up."""
        repeats = self._repeats
        if repeats and not repeats.keys().isdisjoint(ids):
            kept = repeats.keys() & ids
            for tx_id in kept:
                if repeats[tx_id] == 1:
                    del repeats[tx_id]
                else:
                    repeats[tx_id] -= 1
            ids = ids - kept
        self.recent.difference_update(ids)

    def held_between(self, tx_id: bytes, low: int, high: int) -> bool:
        """Whether a held height in ``low .. high`` committed ``tx_id`` (the exact answer, after
        ``recent`` said it may)."""
        first = max(low, self.lowest) - self.lowest
        last = min(high, self.highest) - self.lowest
        heights = self._heights
        return any(tx_id in heights[i] for i in range(first, last + 1))

    def _count_through(self, height: int) -> int:
        """Transactions held at heights lowest .. ``height``."""
        over = self.highest - height
        if over <= 0:
            return self._count
        counts = self._counts
        return self._count - sum(counts[i] for i in range(len(counts) - over, len(counts)))

    # -- using ---------------------------------------------------------------------------------

    def before(self, height: int, ancestors: Sequence[Ancestor] = ()) -> SeenBefore:
        """What a block at ``height`` skips; ``ancestors`` are its uncommitted ancestors, nearest
        last (heights ``height - len(ancestors)`` .. ``height - 1``). Raises WindowHole if a
        committed height the window reaches is not known yet."""
        if self.blocks == 0 or self.txs == 0:
            return NOTHING_BEFORE
        room = self.txs
        sets: list[AbstractSet[bytes]] = []
        reach = max(height - self.blocks, 1)  # the lowest height a window may hold
        below = height - 1
        for ancestor in reversed(ancestors):
            if below < reach or ancestor.count > room:
                return SeenBefore(None, 0, -1, sets)
            room -= ancestor.count
            sets.append(ancestor.ids)
            below -= 1
        if below < reach:
            return SeenBefore(None, 0, -1, sets)
        if below > self.highest:
            raise WindowHole(f"height {below} is committed but its transactions are not known yet")
        low = below
        index = below - self.lowest
        while low >= reach and index >= 0:  # below the lowest held: left, as no window reaches it
            count = self._counts[index]
            if count > room:
                break
            room -= count
            low -= 1
            index -= 1
        return SeenBefore(self, low + 1, below, sets)


def _held(tx_ids: bytes, ids: Iterable[bytes] | None) -> tuple[int, AbstractSet[bytes]]:
    """A height's transaction count and its ids as a set (the content's own set when it has one)."""
    count = len(tx_ids) // DIGEST_SIZE
    if isinstance(ids, set | frozenset):
        return count, ids
    if ids is not None:
        return count, set(ids)
    return count, id_set(tx_ids)


def id_set(tx_ids: bytes) -> set[bytes]:
    """The 32-byte ids of a concatenated ids blob, as a set."""
    return {tx_ids[at:at + DIGEST_SIZE] for at in range(0, len(tx_ids), DIGEST_SIZE)}
