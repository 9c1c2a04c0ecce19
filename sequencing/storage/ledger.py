"""The ledger (``ordo.sqlite``): committed chain, rollup slices, the blocks' tx ids, the bundle
index, batches, evidence and per-rollup sub-log digests. Tables: :mod:`sequencing.storage.schema`;
validation, rows and the running digest: :mod:`sequencing.storage.records`; connection, threading,
opening and crash hooks: :mod:`sequencing.storage.core`.

Durability
    ``append``, ``append_many``, ``save_evidence`` and ``set_meta`` are fsync'd
    (``synchronous=FULL``); ``save_batch`` and ``prune_batches`` are not (``NORMAL``). A committed
    evidence or batch row is never set back to pending (a single row carries its
    ``committed_height``, written in the block's transaction). The ledger trusts the node for
    signatures and ``data_root`` (it checks chain linkage, heights, the proof's block id and the
    shape of the record only).

Finding a transaction (``tx_location``)
    A commit writes its tx ids as one blob (``block_txs``), not one index row per transaction (a
    row with a random 32-byte key cost ~4 us, most of a commit's CPU in schema version 2). The
    newest blocks' blobs stay in memory; older ones are found through ``tx_prefixes``, written in
    bulk every ~2^17 transactions: :mod:`sequencing.storage.txindex` (design and measured costs).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from consensus.commit_proof import CommitProof
from consensus.encoding import unpack
from consensus.errors import ConsensusError
from consensus.messages import MAX_MESSAGE_SIZE, Block, Evidence, genesis_block

from ..rollup.batches import Batch
from ..rollup.block_content import BlockPayload, ReplayMismatch, replay
from ..rollup.chunks import Slices
from ..rollup.transactions import tx_id
from . import txindex
from .core import StorageCore, api
from .records import FROM_BODIES, TX_ID_SIZE, CommitRecord, RollupState, plan, sublog_steps
from .schema import (
    BATCH_BODIES,
    BATCHES,
    BATCHES_BY_STATE,
    BLOCK_TXS,
    LEDGER_DROPS,
    LEDGER_FORMAT,
    LEDGER_SCHEMA,
    RESERVED_META,
    TX_PREFIXES,
    CorruptDatabase,
    InvalidRecord,
)

_APPEND_POINTS = (
    "blocks", "slices", "txindex", "bundles", "batches", "evidence", "rollups", "meta",
    "before-commit", "after-commit",
)

LEDGER_CRASH_POINTS: tuple[str, ...] = (
    *(f"append:{p}" for p in _APPEND_POINTS),
    *(f"append_many:{p}" for p in _APPEND_POINTS),
    "save_evidence:insert", "save_evidence:before-commit", "save_evidence:after-commit",
)


def _decode_proof(blob: bytes) -> CommitProof:
    return CommitProof.from_wire(unpack(blob, max_size=MAX_MESSAGE_SIZE))


def _newest(blocks: list[tuple[int, bytes]], tx_id: bytes) -> tuple[int, int] | None:
    """``(height, index)`` of ``tx_id`` in the newest of ``blocks`` (ascending) holding it."""
    for height, ids in reversed(blocks):
        index = txindex.find_aligned(ids, tx_id, TX_ID_SIZE)
        if index >= 0:
            return height, index
    return None


class LedgerStore(StorageCore):
    """A replica's ledger; see the module docstring. Create with :meth:`LedgerStore.open`."""

    FORMAT = LEDGER_FORMAT
    SCHEMA = LEDGER_SCHEMA
    LEGACY_FOREIGN = ("safety", "voted_blocks")
    LEGACY_DROPS = LEDGER_DROPS
    # A commit writes a few large blobs (slices, block ids, batch bodies): 16 KiB pages take
    # ~25 % less storage CPU per committed transaction than 4 KiB ones (fewer overflow pages to
    # chain, log and checkpoint), for ~40 us more per empty block.
    PAGE_SIZE = 16384

    def __init__(
        self, conn: sqlite3.Connection, path: Path, *, chain_id: str, replica_id: int,
        crash_hook: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(conn, path, chain_id=chain_id, replica_id=replica_id, crash_hook=crash_hook)
        self._genesis_id = genesis_block(chain_id).id
        self._height = 0  # the cached chain tip, installed after each append commits
        self._last_id = self._genesis_id
        self._txs = 0
        self._rollups: dict[int, RollupState] = {}
        # (height, tx ids) of every block with transactions above _indexed (not in tx_prefixes yet)
        self._window: list[tuple[int, bytes]] = []
        self._window_txs = 0  # the ids in _window
        self._indexed = 0

    def _initial_meta(self) -> list[tuple[str, str]]:
        return [("committed_height", "0"), ("txs_committed", "0"), ("txs_indexed_height", "0")]

    def _load_state(self) -> None:
        c = self._conn
        low, high = c.execute("SELECT min(height), max(height) FROM blocks").fetchone()
        meta_height = self._meta_int("committed_height")
        if (high or 0) != meta_height or (high is not None and low != 1):
            raise CorruptDatabase(
                f"{self.path}: blocks span {low}..{high} but committed_height is {meta_height}"
            )
        self._height = meta_height
        self._last_id = self._genesis_id
        if high is not None:
            block_id, blob = c.execute(
                "SELECT block_id, block FROM blocks WHERE height = ?", (high,)
            ).fetchone()
            if self._decode_block(blob, high).id != block_id:
                raise CorruptDatabase(f"{self.path}: the block at height {high} does not match its id")
            self._last_id = block_id
        self._txs = self._meta_int("txs_committed")
        self._rollups = {rid: (n, d, h) for rid, n, d, h in c.execute("SELECT * FROM rollups")}
        self._indexed = self._meta_int("txs_indexed_height")
        if not 0 <= self._indexed <= meta_height:
            raise CorruptDatabase(f"{self.path}: txs_indexed_height {self._indexed} is not within the chain")
        self._window = c.execute(
            "SELECT height, ids FROM block_txs WHERE height > ? ORDER BY height", (self._indexed,)
        ).fetchall()
        self._window_txs = sum(len(ids) for _, ids in self._window) // TX_ID_SIZE

    def _migrate_from_2(self) -> None:
        """Version 2 -> 3: each block's ``txs`` rows -> its ``block_txs`` row, ``tx_prefixes`` as the
        appends would have flushed it; drop ``txs``. Streams both tables in (height, rollup,
        position) order; a position without a row (the later copy of an id committed twice) gets
        the id recomputed from its payload."""
        c = self._conn
        c.execute(BLOCK_TXS)
        c.execute(TX_PREFIXES)
        flusher = txindex.Flusher((), 0)
        rows = c.cursor().execute(
            "SELECT height, rollup_id, position, tx_id FROM txs ORDER BY height, rollup_id, position")
        pending = rows.fetchone()
        out: list[tuple[int, bytes]] = []
        current = 0
        parts: list[bytes] = []
        for height, rollup_id, count, blob in c.cursor().execute(
            "SELECT height, rollup_id, tx_count, payloads FROM slices ORDER BY height, rollup_id"
        ):
            if height != current and parts:
                out.append((current, b"".join(parts)))
                flusher.add(*out[-1])
                parts = []
            current = height
            ids: list[bytes | None] = [None] * count
            while pending is not None and (pending[0], pending[1]) <= (height, rollup_id):
                if (pending[0], pending[1]) != (height, rollup_id) or not 0 <= pending[2] < count:
                    break
                ids[pending[2]] = pending[3]
                pending = rows.fetchone()
            if None in ids:
                payloads = self._payloads(blob, f"{rollup_id}@{height}")
                if len(payloads) != count:
                    raise CorruptDatabase(f"{self.path}: slice {rollup_id}@{height}: {len(payloads)} payloads,"
                                          f" tx_count {count}")
                ids = [i if i is not None else tx_id(rollup_id, p) for i, p in zip(ids, payloads, strict=True)]
            parts.extend(i for i in ids if i is not None)
            if len(out) >= 256:
                self._insert_ids(out, flusher)
        if parts:
            out.append((current, b"".join(parts)))
            flusher.add(*out[-1])
        if pending is not None:
            raise CorruptDatabase(f"{self.path}: the version-2 txs row of {pending[3].hex()[:12]}"
                                  f" ({pending[0]}/{pending[1]}/{pending[2]}) is in no slice")
        self._insert_ids(out, flusher)
        c.execute("INSERT INTO meta VALUES ('txs_indexed_height', ?)", (str(flusher.indexed),))
        c.execute("DROP TABLE txs")

    def _migrate_from_3(self) -> None:
        """Version 3 -> 4: the batch bodies move out of ``batches`` into ``batch_bodies``, and the
        sub-log digests are recomputed over tx ids."""
        c = self._conn
        c.execute(BATCH_BODIES)
        c.execute("INSERT INTO batch_bodies SELECT digest, body FROM batches WHERE body IS NOT NULL")
        c.execute("ALTER TABLE batches RENAME TO batches_v3")
        c.execute("DROP INDEX batches_by_state")
        c.execute(BATCHES)
        c.execute("INSERT INTO batches SELECT digest, author, created_height, committed_height FROM batches_v3")
        c.execute("DROP TABLE batches_v3")
        c.execute(BATCHES_BY_STATE)
        # the sub-log digests over tx ids (records), recomputed from genesis: a replica upgraded
        # at another height still agrees. Streams the slices' counts and the blocks' ids by height.
        counts = c.cursor().execute("SELECT height, rollup_id, tx_count FROM slices ORDER BY height, rollup_id")
        row = counts.fetchone()
        digests: dict[int, RollupState] = {}
        for height, ids in c.cursor().execute("SELECT height, ids FROM block_txs ORDER BY height"):
            at_height: list[tuple[int, int]] = []
            while row is not None and row[0] <= height:
                if row[0] < height:
                    raise CorruptDatabase(f"{self.path}: the slices at height {row[0]} have no tx ids")
                at_height.append((row[1], row[2]))
                row = counts.fetchone()
            if sum(n for _, n in at_height) * TX_ID_SIZE != len(ids):
                raise CorruptDatabase(f"{self.path}: block {height}'s tx ids do not match its slices")
            sublog_steps(digests, height, at_height, ids, {})
        if row is not None:
            raise CorruptDatabase(f"{self.path}: the slices at height {row[0]} have no tx ids")
        c.execute("DELETE FROM rollups")
        c.executemany("INSERT INTO rollups VALUES (?, ?, ?, ?)", [(r, n, d, h) for r, (n, d, h) in digests.items()])

    def _insert_ids(self, block_txs: list[tuple[int, bytes]], flusher: txindex.Flusher) -> None:
        self._conn.executemany("INSERT INTO block_txs VALUES (?, ?)", block_txs)
        self._conn.executemany("INSERT INTO tx_prefixes VALUES (?, ?, ?, ?)", flusher.rows)
        block_txs.clear()
        flusher.rows.clear()

    # -- meta ----------------------------------------------------------------------------------------

    @api
    def set_meta(self, key: str, value: str) -> None:
        """A free key for operators (``recovered_floor``); read it with the sqlite3 shell."""
        if key in RESERVED_META:
            raise InvalidRecord(f"meta key {key!r} is maintained by storage")
        with self._transaction("set_meta", durable=True, hooked=False):
            self._conn.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, str(value)),
            )

    # -- committed chain --------------------------------------------------------------------------

    @api
    def append(self, record: CommitRecord) -> None:
        """Write one committed block and everything it implies, in one fsync'd transaction.

        Raises :class:`InvalidRecord` (nothing written) unless ``record.block`` is at
        ``committed_height() + 1`` and its parent is the last committed block."""
        self._append([record], "append")

    @api
    def append_many(self, records: Sequence[CommitRecord]) -> None:
        """:meth:`append` for consecutive blocks, all in one transaction (all or nothing)."""
        self._append(list(records), "append_many")

    def _append(self, records: list[CommitRecord], op: str) -> None:
        if not records:
            return
        rows = plan(records, height=self._height, last_id=self._last_id, rollups=self._rollups)
        flusher = txindex.Flusher(self._window, self._indexed, self._window_txs)
        for height, ids in rows.block_txs:
            flusher.add(height, ids)
        c = self._conn
        with self._transaction(op, durable=True) as txn:
            c.executemany("INSERT INTO blocks VALUES (?, ?, ?, ?)", rows.blocks)
            txn.point("blocks")
            c.executemany("INSERT INTO slices VALUES (?, ?, ?, ?)", rows.slices)
            txn.point("slices")
            c.executemany("INSERT INTO block_txs VALUES (?, ?)", rows.block_txs)
            c.executemany("INSERT INTO tx_prefixes VALUES (?, ?, ?, ?)", flusher.rows)
            txn.point("txindex")
            # A bundle id seen again later keeps its first location.
            c.executemany("INSERT OR IGNORE INTO bundles VALUES (?, ?, ?)", rows.bundles)
            txn.point("bundles")
            c.executemany(
                "INSERT INTO batches (digest, committed_height) VALUES (?, ?) ON CONFLICT(digest)"
                " DO UPDATE SET committed_height = excluded.committed_height"
                " WHERE batches.committed_height IS NULL",
                rows.batches,
            )
            c.executemany("INSERT OR IGNORE INTO batch_bodies VALUES (?, ?)", rows.batch_bodies)
            txn.point("batches")
            c.executemany(
                "INSERT INTO evidence VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(evidence_id)"
                " DO UPDATE SET committed_height = excluded.committed_height"
                " WHERE evidence.committed_height IS NULL",
                rows.evidence,
            )
            txn.point("evidence")
            c.executemany(
                "INSERT INTO rollups VALUES (?, ?, ?, ?) ON CONFLICT(rollup_id) DO UPDATE SET"
                " tx_count = excluded.tx_count, digest = excluded.digest,"
                " last_height = excluded.last_height",
                [(rid, n, d, h) for rid, (n, d, h) in rows.rollups.items()],
            )
            txn.point("rollups")
            txs = self._txs + rows.tx_count
            meta = [(str(rows.height), "committed_height"), (str(txs), "txs_committed")]
            if flusher.indexed != self._indexed:
                meta.append((str(flusher.indexed), "txs_indexed_height"))
            c.executemany("UPDATE meta SET value = ? WHERE key = ?", meta)
            txn.point("meta")
            txn.on_commit.append(lambda: self._installed(rows.height, rows.last_id, txs, rows.rollups, flusher))

    def _installed(self, height: int, last_id: bytes, txs: int, rollups: dict[int, RollupState],
                   flusher: txindex.Flusher) -> None:
        self._height, self._last_id, self._txs = height, last_id, txs
        self._rollups.update(rollups)
        self._window, self._indexed, self._window_txs = flusher.pending, flusher.indexed, flusher.count

    @api
    def committed_height(self) -> int:
        """The height of the last committed block; 0 when empty (genesis is not stored)."""
        return self._height

    def _block_row(self, height: int) -> tuple[Block, CommitProof] | None:
        row = self._conn.execute("SELECT block, proof FROM blocks WHERE height = ?", (height,)).fetchone()
        if row is None:
            return None
        proof = self._decode(f"proof at height {height}", _decode_proof, row[1])
        return self._decode_block(row[0], height), proof

    @api
    def block_at(self, height: int) -> tuple[Block, CommitProof] | None:
        return self._block_row(height)

    @api
    def last_block(self) -> tuple[Block, CommitProof] | None:
        return self._block_row(self._height) if self._height else None

    @api
    def block_by_id(self, block_id: bytes) -> Block | None:
        row = self._conn.execute(
            "SELECT height, block FROM blocks WHERE block_id = ?", (block_id,)
        ).fetchone()
        return None if row is None else self._decode_block(row[1], row[0])

    @api
    def blocks_between(self, first: int, last: int) -> list[Block]:
        """Committed blocks with ``first <= height <= last``, ascending. The caller bounds the range."""
        rows = self._conn.execute(
            "SELECT height, block FROM blocks WHERE height BETWEEN ? AND ? ORDER BY height", (first, last)
        )
        return [self._decode_block(blob, h) for h, blob in rows]

    @api
    def tx_ids_between(self, first: int, last: int) -> list[tuple[int, bytes]]:
        """``(height, ids blob)`` of every committed height ``first .. last``, ascending (``b""``
        for a block without transactions). The caller bounds the range."""
        first, last = max(first, 1), min(last, self._height)
        found = dict(self._conn.execute(
            "SELECT height, ids FROM block_txs WHERE height BETWEEN ? AND ?", (first, last)
        ).fetchall())
        return [(h, found.get(h, b"")) for h in range(first, last + 1)]

    def _committed(self, height: int) -> bool:
        return 1 <= height <= self._height

    def _payloads(self, blob: bytes, where: str) -> list[bytes]:
        return self._decode(f"slice {where}", lambda b: list(unpack(b, max_size=1 << 30)), blob)

    @api
    def slices_at(self, height: int) -> Slices | None:
        """The block's slices ``(rollup id, payloads)`` by ascending rollup id (tree order), or
        None if ``height`` is not committed."""
        return self._slices(height)

    def _slices(self, height: int) -> Slices | None:
        if not self._committed(height):
            return None
        rows = self._conn.execute(
            "SELECT rollup_id, tx_count, payloads FROM slices WHERE height = ? ORDER BY rollup_id", (height,)
        ).fetchall()
        if any(blob == FROM_BODIES for _, _, blob in rows):
            return self._replayed(height, [(rid, count) for rid, count, _ in rows])
        return tuple((rid, tuple(self._payloads(blob, f"{rid}@{height}"))) for rid, _, blob in rows)

    def _replayed(self, height: int, counts: list[tuple[int, int]]) -> Slices:
        """The slices of a block stored as its batch bodies and tx ids (records.FROM_BODIES): the
        split replayed (``block_content.replay``), checked against the stored slice counts."""
        found = self._block_row(height)
        assert found is not None  # committed
        try:
            digests = BlockPayload.decode(found[0].payload).batches
        except ConsensusError as exc:
            raise CorruptDatabase(f"{self.path}: block {height}'s payload: {exc}") from exc
        batches = []
        for digest in digests:
            body = self._batch_body(digest)
            if body is None:
                raise CorruptDatabase(f"{self.path}: block {height}'s batch {digest.hex()[:12]} has no body")
            batches.append(self._decode(f"batch {digest.hex()[:12]}", lambda b: Batch.decode(b, len(b)), body))
        ids = self._conn.execute("SELECT ids FROM block_txs WHERE height = ?", (height,)).fetchone()
        try:
            slices = replay(batches, b"" if ids is None else ids[0])
        except ReplayMismatch as exc:
            raise CorruptDatabase(f"{self.path}: block {height}: {exc}") from exc
        if [(rid, len(payloads)) for rid, payloads in slices] != counts:
            raise CorruptDatabase(f"{self.path}: block {height}'s batches give other slices than it stored")
        return slices

    @api
    def tx_location(self, tx_id: bytes) -> tuple[int, int, int] | None:
        """``(height, rollup_id, position in that slice)`` of a committed transaction (its newest
        location if it was committed twice). Cost: the module docstring."""
        if not isinstance(tx_id, bytes) or len(tx_id) != TX_ID_SIZE:
            return None
        found = self._find(tx_id)
        if found is None:
            return None
        height, index = found
        start = 0
        for rollup_id, count in self._conn.execute(
            "SELECT rollup_id, tx_count FROM slices WHERE height = ? ORDER BY rollup_id", (height,)
        ):
            if index < start + count:
                return height, rollup_id, index - start
            start += count
        raise CorruptDatabase(f"{self.path}: block {height}'s tx ids outnumber its slices' transactions")

    def _find(self, tx_id: bytes) -> tuple[int, int] | None:
        """``(height, index in that block's ids)`` of ``tx_id``'s newest copy: the window, then
        the flushes whose prefixes match, newest first (:mod:`.txindex`)."""
        found = _newest(self._window, tx_id)
        if found is not None:
            return found
        prefix = tx_id[:txindex.PREFIX_SIZE]
        for first, last, prefixes in self._conn.execute(
            "SELECT first_height, last_height, prefixes FROM tx_prefixes WHERE bucket = ?"
            " ORDER BY last_height DESC", (txindex.bucket_of(tx_id),)
        ).fetchall():
            if txindex.find_aligned(prefixes, prefix, txindex.PREFIX_SIZE) >= 0:
                found = _newest(self._conn.execute(
                    "SELECT height, ids FROM block_txs WHERE height BETWEEN ? AND ? ORDER BY height", (first, last)
                ).fetchall(), tx_id)
                if found is not None:
                    return found
        return None

    @api
    def bundle_location(self, bundle_id: bytes) -> tuple[int, tuple[int, ...]] | None:
        """``(height, tree-order positions of its transactions)`` of a committed bundle (the column is
        still called ``leaf_indices``: one leaf was one transaction before chunk leaves)."""
        row = self._conn.execute(
            "SELECT height, leaf_indices FROM bundles WHERE bundle_id = ?", (bundle_id,)
        ).fetchone()
        if row is None:
            return None
        return row[0], tuple(self._decode("bundle", lambda b: unpack(b, max_size=1 << 24), row[1]))

    @api
    def rollup_summary(self) -> dict[int, tuple[int, bytes]]:
        """rollup_id -> (committed tx count, running sub-log digest; see :mod:`.records`)."""
        return {rid: (n, d) for rid, (n, d, _) in sorted(self._rollups.items())}

    @api
    def txs_committed(self) -> int:
        return self._txs

    # -- batches -----------------------------------------------------------------------------------

    @api
    def save_batch(self, digest: bytes, author: int, created_height: int, body: bytes,
                   replaces: Sequence[bytes] = ()) -> None:
        """Keep a batch body (idempotent; the first body and author stay). A body for a batch
        already committed is kept too. In the same transaction, delete the uncommitted batches
        ``replaces`` (expired ones whose items this batch carries now)."""
        if not isinstance(digest, bytes) or len(digest) != 32 or not isinstance(body, bytes):
            raise InvalidRecord("save_batch needs a 32-byte digest and a bytes body")
        c = self._conn
        with self._transaction("save_batch", durable=False, hooked=False):
            c.execute(
                "INSERT INTO batches VALUES (?, ?, ?, NULL) ON CONFLICT(digest) DO UPDATE SET"
                " author = coalesce(batches.author, excluded.author),"
                " created_height = coalesce(batches.created_height, excluded.created_height)",
                (digest, author, created_height),
            )
            c.execute("INSERT OR IGNORE INTO batch_bodies VALUES (?, ?)", (digest, body))
            self._delete_batches([
                (old,) for old in replaces
                if old != digest and c.execute(
                    "SELECT 1 FROM batches WHERE digest = ? AND committed_height IS NULL", (old,)
                ).fetchone()
            ])

    def _delete_batches(self, digests: list[tuple[bytes]]) -> None:
        """Delete these batches' rows and bodies (inside the caller's transaction)."""
        self._conn.executemany("DELETE FROM batch_bodies WHERE digest = ?", digests)
        self._conn.executemany("DELETE FROM batches WHERE digest = ?", digests)

    @api
    def load_batch(self, digest: bytes) -> bytes | None:
        return self._batch_body(digest)

    def _batch_body(self, digest: bytes) -> bytes | None:
        row = self._conn.execute("SELECT body FROM batch_bodies WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else row[0]

    @api
    def pending_batches(self) -> list[tuple[bytes, int, int, bytes]]:
        """Uncommitted batches ``(digest, author, created_height, body)`` by created height."""
        rows = self._conn.execute(
            "SELECT b.digest, b.author, b.created_height, d.body FROM batches b"
            " JOIN batch_bodies d ON d.digest = b.digest"
            " WHERE b.committed_height IS NULL ORDER BY b.created_height, b.digest"
        )
        return [(d, a, h, b) for d, a, h, b in rows]

    @api
    def committed_batches_since(self, height: int) -> list[tuple[bytes, int]]:
        """(digest, committed height) of batches committed at or above ``height``."""
        return [(bytes(d), h) for d, h in self._conn.execute(
            "SELECT digest, committed_height FROM batches WHERE committed_height >= ?", (height,)
        )]

    @api
    def prune_batches(self, below_height: int, keep: Collection[bytes] = frozenset()) -> int:
        """Delete uncommitted batches created below ``below_height`` (expired: no block above
        ``created_height + batch_ttl_blocks`` may include them), except those in ``keep``.
        Committed batches keep their bodies: catch-up serves them to lagging replicas. Returns
        the number of rows deleted."""
        c = self._conn
        with self._transaction("prune_batches", durable=False, hooked=False):
            expired = c.execute(
                "SELECT digest FROM batches WHERE committed_height IS NULL AND created_height < ?",
                (below_height,),
            ).fetchall()
            doomed = [(digest,) for (digest,) in expired if digest not in keep]
            self._delete_batches(doomed)
        return len(doomed)

    # -- evidence ----------------------------------------------------------------------------------

    @api
    def save_evidence(self, evidence: Evidence, received_at_round: int) -> bool:
        """Record evidence as pending; True if it was new. Never touches a known row, so committed
        evidence never goes back to pending. Evidence first seen in a committed block is recorded
        with that block's round as its received round."""
        with self._transaction("save_evidence", durable=True) as txn:
            new = self._conn.execute(
                "INSERT OR IGNORE INTO evidence VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (evidence.id, evidence.offender, evidence.round, int(evidence.kind), evidence.encode(),
                 received_at_round),
            ).rowcount == 1
            txn.point("insert")
        return new

    @api
    def evidence_list(
        self, *, offender: int | None = None, limit: int = 1000
    ) -> list[tuple[Evidence, int | None]]:
        """``(evidence, committed height or None)`` by (round, id), optionally for one offender."""
        where, args = ("WHERE offender = ?", (offender,)) if offender is not None else ("", ())
        rows = self._conn.execute(
            f"SELECT body, committed_height FROM evidence {where} ORDER BY round, evidence_id LIMIT ?",
            (*args, max(0, limit)),
        )
        return [(self._decode("evidence", Evidence.decode, body), h) for body, h in rows]
