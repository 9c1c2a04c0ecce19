"""Finding a transaction by id without an index row per transaction.

A commit stores its block's tx ids as one blob (``block_txs``: the 32-byte ids concatenated in
tree order). The newest blocks' blobs stay in memory (the *window*); when the window holds
``2 * FLUSH_TXS`` ids or ``2 * FLUSH_BLOCKS`` blocks, its oldest blocks holding ``FLUSH_TXS`` ids
(or ``FLUSH_BLOCKS`` blocks, whichever comes first) are *flushed*, in the same transaction as the
block that crossed the mark: the 8-byte prefixes of their ids are sorted (as little-endian
uint64, by numpy: :func:`prefix_rows`) and cut into at most :data:`BUCKETS` rows of
``tx_prefixes`` by the prefix's top bits, each row saying "these prefixes occur in heights
``first_height .. last_height``". ``meta.txs_indexed_height`` is the last flushed height: every
block above it is in the window (reloaded from ``block_txs`` when the ledger opens).

A lookup searches the window, newest block first (``bytes.find`` at 32-byte alignment), then the
id's bucket rows, newest flush first; a prefix hit is confirmed by searching that flush's
``block_txs`` rows for the whole id (a false hit, another id with the same 64-bit prefix, just
moves on). Measured with ``tests/sequencing/bench_append.py`` (600k txs, loaded 2-core machine):
the flushes add ~0.01 us of CPU (numpy; ~0.4 us with a Python list sort) and ~0.005 rows per
transaction; a lookup of a recent id takes ~10 us, of an id never committed ~1.5 ms (the whole
window, 4-8 MiB, then its bucket's rows), of an old id ~2.5 ms (its bucket's rows, then one
flush's ids, ~4 MiB). A bucket's rows hold 1/``BUCKETS`` of all prefixes, 8 bytes each: the one
part that grows with the ledger (~2.8 MB read per lookup at 360 million transactions). An id
committed twice is found at its newest location.

Which bucket and the order of a row's prefixes are defined on the prefix read little-endian, so
the file does not depend on the machine's byte order.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

TX_ID_SIZE = 32
PREFIX_SIZE = 8
FLUSH_TXS = 1 << 17  # the window holds fewer than twice as many ids (8 MiB) ...
FLUSH_BLOCKS = 1 << 10  # ... in fewer than twice as many blocks
BUCKET_BITS = 10
BUCKETS = 1 << BUCKET_BITS
_SHIFT = 64 - BUCKET_BITS
_WORDS = TX_ID_SIZE // PREFIX_SIZE
_LE_U64 = np.dtype("<u8")  # the prefix as read little-endian, whatever the machine's byte order
_BUCKET_STARTS = np.arange(1, BUCKETS, dtype=_LE_U64) << np.uint64(_SHIFT)  # bucket b's smallest prefix, b >= 1

PrefixRow = tuple[int, int, int, bytes]  # (bucket, last_height, first_height, sorted prefixes)


def find_aligned(blob: bytes, needle: bytes, size: int) -> int:
    """The index of ``needle`` in ``blob`` read as ``size``-byte entries (a match at an entry
    boundary), or -1."""
    at = blob.find(needle)
    while at >= 0 and at % size:
        at = blob.find(needle, at + 1)
    return at // size if at >= 0 else -1


def bucket_of(tx_id: bytes) -> int:
    return int.from_bytes(tx_id[:PREFIX_SIZE], "little") >> _SHIFT


def prefix_rows(blocks: Iterable[tuple[int, bytes]], first_height: int, last_height: int) -> list[PrefixRow]:
    """The ``tx_prefixes`` rows of one flush of ``blocks`` (``(height, ids)``), which together
    with the empty blocks between them span ``first_height .. last_height``.

    numpy does the work: the ids' first 8 bytes viewed as little-endian uint64 (no copy), gathered
    into one array, sorted with the GIL released, cut by ``searchsorted`` and written back
    little-endian. ~2 ms of GIL for 2^17 ids (a list of Python ints and ``list.sort`` held it
    ~50 ms). The rows are the same bytes as that reference (``tests/sequencing/test_txindex.py``)."""
    parts = [np.frombuffer(ids, dtype=_LE_U64)[::_WORDS] for _, ids in blocks if ids]
    if not parts:
        return []
    prefixes = np.sort(np.concatenate(parts))
    cuts = [0, *np.searchsorted(prefixes, _BUCKET_STARTS).tolist(), len(prefixes)]
    blob = prefixes.tobytes()
    return [
        (b, last_height, first_height, blob[PREFIX_SIZE * cuts[b]:PREFIX_SIZE * cuts[b + 1]])
        for b in range(BUCKETS) if cuts[b] < cuts[b + 1]
    ]


class Flusher:
    """Which blocks a sequence of appended blocks flushes: the same blocks however the appends
    are grouped (one ``append`` each or ``append_many``), so two replicas write the same rows."""

    def __init__(self, window: Iterable[tuple[int, bytes]], indexed: int, count: int | None = None) -> None:
        """``count``: the ids in ``window`` if known (the ledger keeps it: summing a window of
        many blocks per append showed in the profile)."""
        self.pending = list(window)  # unflushed blocks with transactions, ascending heights
        self.count = sum(len(ids) for _, ids in self.pending) // TX_ID_SIZE if count is None else count
        self.indexed = indexed
        self.rows: list[PrefixRow] = []

    def add(self, height: int, ids: bytes) -> None:
        self.pending.append((height, ids))
        self.count += len(ids) // TX_ID_SIZE
        if self.count < 2 * FLUSH_TXS and len(self.pending) < 2 * FLUSH_BLOCKS:
            return
        taken, n = 0, 0
        while taken < len(self.pending) and (taken == 0 or (n < FLUSH_TXS and taken < FLUSH_BLOCKS)):
            n += len(self.pending[taken][1]) // TX_ID_SIZE
            taken += 1
        flushed, self.pending = self.pending[:taken], self.pending[taken:]
        last = flushed[-1][0]
        self.rows.extend(prefix_rows(flushed, self.indexed + 1, last))
        self.indexed, self.count = last, self.count - n
