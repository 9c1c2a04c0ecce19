"""The ids of recently committed transactions, so that the split drops a transaction committed
before (docs/PROTOCOL.md section 12, "Exactly once across replicas").

A block at height ``h`` skips every transaction whose id is in its *window*: the blocks of its own
chain at heights ``h - 1``, ``h - 2``, ... going back at most ``blocks`` heights and stopping
before the block that would bring the window's transaction count above ``txs``. The window is a
function of the chain alone, so every replica splits a block the same way; ``txs`` bounds memory
whatever the block sizes.

:class:`RecentTxWindow` holds the committed part: the ids of a contiguous range of committed
heights (a dict from id to height, for a C-level test of a whole group and the height of an id,
and each height's ids blob, to forget them when the height leaves). A committed height enters when
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
            if window is None or window.where.keys().isdisjoint(ids):
                return True
        return not any(tx_id in self for tx_id in ids)

    def __contains__(self, tx_id: object) -> bool:
        if any(tx_id in a for a in self._ancestors):
            return True
        window = self._window
        if window is None or not isinstance(tx_id, bytes):
            return False
        return any(self._low <= h <= self._high for h in window.heights_of(tx_id))


NOTHING_BEFORE = SeenBefore(None, 0, -1, ())


class RecentTxWindow:
    def __init__(self, *, blocks: int, txs: int) -> None:
        if blocks < 0 or txs < 0:
            raise ValueError("the window's bounds must be >= 0")
        self.blocks = blocks
        self.txs = txs
        self.where: dict[bytes, int] = {}  # every id held -> the newest height holding it
        self._older: dict[bytes, list[int]] = {}  # an id held at several heights: the others, ascending
        self._heights: deque[bytes] = deque()  # ids blob of each height, lowest .. highest
        self._counts: deque[int] = deque()
        self.lowest = 1  # the height of _heights[0]
        self._ahead: dict[int, tuple[bytes, Iterable[bytes]]] = {}  # committed above a hole
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
        self.where.clear()
        self._older.clear()
        self._heights.clear()
        self._counts.clear()
        self._ahead.clear()
        self._count = 0
        self.lowest = height + 1 - len(rows)
        self._executed = height
        for expected, (row_height, tx_ids) in enumerate(rows, start=self.lowest):
            if row_height != expected:
                raise ValueError(f"ids of height {expected} missing (got {row_height})")
            self._append(tx_ids, _split_ids(tx_ids))
        self._evict()

    def committed(self, height: int, tx_ids: bytes | None, ids: Iterable[bytes] | None = None) -> None:
        """Height ``height`` is committed; its ids if this replica knows its content, else None
        (the executor brings them with :meth:`executed`)."""
        if height <= self.highest or tx_ids is None:
            return
        self._ahead[height] = (tx_ids, ids if ids is not None else _split_ids(tx_ids))
        self._drain()

    def executed(self, height: int, tx_ids: bytes, ids: Iterable[bytes] | None = None) -> None:
        """The executor assembled (or took) committed height ``height``: the heights it still has
        to assemble are above it, so lower heights may leave the window."""
        if height > self.highest:
            self._ahead.setdefault(height, (tx_ids, ids if ids is not None else _split_ids(tx_ids)))
            self._drain()
        self._executed = max(self._executed, height)
        self._evict()

    def _drain(self) -> None:
        while self.highest + 1 in self._ahead:
            tx_ids, ids = self._ahead.pop(self.highest + 1)
            self._append(tx_ids, ids)
        self._evict()

    def _append(self, tx_ids: bytes, ids: Iterable[bytes]) -> None:
        height = self.highest + 1
        where = self.where
        ids = ids if isinstance(ids, list | set | frozenset) else list(ids)
        if not where.keys().isdisjoint(ids):  # committed before, outside that block's window
            for tx_id in where.keys() & set(ids):
                self._older.setdefault(tx_id, []).append(where[tx_id])
        where.update(dict.fromkeys(ids, height))
        self._heights.append(tx_ids)
        count = len(tx_ids) // DIGEST_SIZE
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
            tx_ids = self._heights.popleft()
            count = self._counts.popleft()
            self._count -= count
            held -= count
            if count:
                self._forget(_split_ids(tx_ids))
            self.lowest += 1

    def _forget(self, ids: list[bytes]) -> None:
        """The lowest height leaves: its ids go, except those also held higher up."""
        older = self._older
        if older and not older.keys().isdisjoint(ids):
            kept = []
            for tx_id in ids:
                heights = older.get(tx_id)
                if heights is None:
                    kept.append(tx_id)
                    continue
                heights.pop(0)  # this height, the lowest of its heights
                if not heights:
                    del older[tx_id]
            ids = kept
        deque(map(self.where.pop, ids), maxlen=0)

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

    def heights_of(self, tx_id: bytes) -> list[int]:
        """The held heights that committed ``tx_id`` (none, almost always several only after a
        retry outside a window)."""
        newest = self.where.get(tx_id)
        if newest is None:
            return []
        return [*self._older.get(tx_id, ()), newest]


def _split_ids(tx_ids: bytes) -> list[bytes]:
    return [tx_ids[at:at + DIGEST_SIZE] for at in range(0, len(tx_ids), DIGEST_SIZE)]
