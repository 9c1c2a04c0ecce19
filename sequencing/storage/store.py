"""A replica's durable state in one SQLite file: committed chain, rollup slices, indexes,
batches, evidence and the consensus safety state.

Concurrency
    One ``Storage`` is one ``sqlite3`` connection and is NOT thread-safe. The node calls it from a
    single trio task through ``trio.to_thread.run_sync``, so calls never overlap but may run on
    different worker threads (hence ``check_same_thread=False``). Overlapping calls are detected
    and refused with :class:`StorageError` rather than interleaved. The file is held with
    ``locking_mode=EXCLUSIVE``: a second process (or a second ``Storage``) gets
    :class:`DatabaseLocked`, so two replica processes can never share, and equivocate from, one
    safety state. Do not open() the database file by other means inside the node process: closing
    any descriptor of it drops all of the process's POSIX locks on it, SQLite's included.

Durability
    WAL journal. ``synchronous=FULL`` (the WAL is fsync'd at every COMMIT) for ``append``,
    ``append_many``, ``save_safety``, ``save_evidence`` and ``set_meta``; ``NORMAL`` for
    ``save_batch`` and ``prune_batches``, which survive a process kill but may lose their last
    writes on power loss. Each write is one transaction: after a crash at any point the database
    is exactly before or exactly after it. A committed evidence or batch row is never set back to
    pending (a single row carries its ``committed_height``, written in the block's transaction).

Layout
    Tables and keys: :mod:`sequencing.storage.schema`; validation, rows and the per-rollup running
    digest: :mod:`sequencing.storage.records`; connection, opening checks and transactions:
    :mod:`sequencing.storage.core`. Storage trusts the node for signatures and ``data_root`` (it
    checks chain linkage, heights, the proof's block id and the shape of the record only).

Crash hook (tests)
    ``crash_hook(name)`` runs at each name of :data:`CRASH_POINTS`, between the writes of a
    transaction and right before and after its COMMIT. A hook that raises aborts the write (it is
    rolled back like any other failure); tests snapshot the files inside the hook, or kill the
    process there, to get the on-disk state of a crash at that point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from consensus.commit_proof import CommitProof
from consensus.encoding import pack, unpack
from consensus.messages import MAX_MESSAGE_SIZE, Block, Evidence
from consensus.safety import SafetyState

from .core import StorageCore, api
from .records import SUBLOG_SEED, CommitRecord, RollupState, plan, sublog_step
from .schema import (
    RESERVED_META,
    CorruptDatabase,
    CrashPoint,
    DatabaseLocked,
    InvalidRecord,
    MissingDatabase,
    StorageError,
)

__all__ = [
    "CRASH_POINTS",
    "SUBLOG_SEED",
    "CommitRecord",
    "CorruptDatabase",
    "CrashPoint",
    "DatabaseLocked",
    "EvidenceState",
    "EvidenceStatus",
    "InvalidRecord",
    "MissingDatabase",
    "Storage",
    "StorageError",
    "sublog_step",
]

_APPEND_POINTS = (
    "blocks", "slices", "txindex", "bundles", "batches", "evidence", "rollups", "meta",
    "before-commit", "after-commit",
)
CRASH_POINTS: tuple[str, ...] = (
    *(f"append:{p}" for p in _APPEND_POINTS),
    *(f"append_many:{p}" for p in _APPEND_POINTS),
    "save_evidence:insert", "save_evidence:before-commit", "save_evidence:after-commit",
    "save_safety:write", "save_safety:before-commit", "save_safety:after-commit",
)


def _decode_proof(blob: bytes) -> CommitProof:
    return CommitProof.from_wire(unpack(blob, max_size=MAX_MESSAGE_SIZE))


class EvidenceState(Enum):
    UNKNOWN = "unknown"
    PENDING = "pending"
    COMMITTED = "committed"


@dataclass(frozen=True, slots=True)
class EvidenceStatus:
    """``height`` is the committing block's height when ``state`` is COMMITTED, else None."""

    state: EvidenceState
    height: int | None = None

    @property
    def known(self) -> bool:
        return self.state is not EvidenceState.UNKNOWN

    @property
    def committed(self) -> bool:
        return self.state is EvidenceState.COMMITTED


class Storage(StorageCore):
    """A replica's database; see the module docstring. Create with :meth:`Storage.open`."""

    # -- meta and safety ---------------------------------------------------------------------------

    @property
    def is_new(self) -> bool:
        """True if this ``open`` created the database."""
        return self._is_new

    @api
    def get_meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @api
    def set_meta(self, key: str, value: str) -> None:
        if key in RESERVED_META:
            raise InvalidRecord(f"meta key {key!r} is maintained by storage")
        with self._transaction("set_meta", durable=True, hooked=False):
            self._conn.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, str(value)),
            )

    @api
    def load_safety(self) -> SafetyState | None:
        row = self._conn.execute("SELECT state FROM safety WHERE slot = 0").fetchone()
        return None if row is None else self._decode("safety state", SafetyState.decode, row[0])

    @api
    def save_safety(self, state: SafetyState, voted: Sequence[Block] = ()) -> None:
        """Durably replace the safety state, together with the uncommitted blocks it is about to
        vote for (fsync'd before returning)."""
        blob = state.encode()
        with self._transaction("save_safety", durable=True) as txn:
            self._conn.executemany(
                "INSERT OR IGNORE INTO voted_blocks VALUES (?, ?, ?)",
                [(b.id, b.height, pack(b.to_wire())) for b in voted],
            )
            self._conn.execute(
                "INSERT INTO safety VALUES (0, ?) ON CONFLICT(slot) DO UPDATE SET state = excluded.state",
                (blob,),
            )
            txn.point("write")

    @api
    def prune_voted(self, height: int) -> None:
        """Forget voted blocks at or below ``height`` (committed over); not fsync'd: a crash only
        leaves blocks that :meth:`voted_blocks` callers skip anyway."""
        with self._transaction("prune_voted", durable=False, hooked=False):
            self._conn.execute("DELETE FROM voted_blocks WHERE height <= ?", (height,))

    @api
    def voted_blocks(self) -> list[Block]:
        """Uncommitted blocks above the committed height that this replica voted for, by height."""
        rows = self._conn.execute(
            "SELECT height, block FROM voted_blocks WHERE height > ? ORDER BY height", (self._height,)
        ).fetchall()
        return [self._decode_block(row[1], row[0]) for row in rows]

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
        c = self._conn
        with self._transaction(op, durable=True) as txn:
            c.executemany("INSERT INTO blocks VALUES (?, ?, ?, ?)", rows.blocks)
            txn.point("blocks")
            c.executemany("INSERT INTO slices VALUES (?, ?, ?, ?)", rows.slices)
            txn.point("slices")
            # A tx id or bundle id seen again later keeps its first location.
            c.executemany("INSERT OR IGNORE INTO txs VALUES (?, ?, ?, ?)", rows.txs)
            txn.point("txindex")
            c.executemany("INSERT OR IGNORE INTO bundles VALUES (?, ?, ?)", rows.bundles)
            txn.point("bundles")
            c.executemany(
                "INSERT INTO batches (digest, committed_height, body) VALUES (?, ?, ?) ON CONFLICT(digest)"
                " DO UPDATE SET committed_height = excluded.committed_height,"
                " body = coalesce(batches.body, excluded.body)"
                " WHERE batches.committed_height IS NULL",
                rows.batches,
            )
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
            c.executemany("UPDATE meta SET value = ? WHERE key = ?",
                          [(str(rows.height), "committed_height"), (str(txs), "txs_committed")])
            c.execute("DELETE FROM voted_blocks WHERE height <= ?", (rows.height,))
            txn.point("meta")
            txn.on_commit.append(lambda: self._installed(rows.height, rows.last_id, txs, rows.rollups))

    def _installed(self, height: int, last_id: bytes, txs: int, rollups: dict[int, RollupState]) -> None:
        self._height, self._last_id, self._txs = height, last_id, txs
        self._rollups.update(rollups)

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

    def _committed(self, height: int) -> bool:
        return 1 <= height <= self._height

    def _payloads(self, blob: bytes, where: str) -> list[bytes]:
        return self._decode(f"slice {where}", lambda b: list(unpack(b, max_size=1 << 30)), blob)

    @api
    def leaves_at(self, height: int) -> tuple[tuple[int, bytes], ...] | None:
        """The block's NMT leaves in tree order, or None if ``height`` is not committed."""
        if not self._committed(height):
            return None
        rows = self._conn.execute(
            "SELECT rollup_id, payloads FROM slices WHERE height = ? ORDER BY rollup_id", (height,)
        )
        return tuple(
            (rid, payload) for rid, blob in rows for payload in self._payloads(blob, f"{rid}@{height}")
        )

    @api
    def slice(self, rollup_id: int, height: int) -> list[bytes] | None:
        """The rollup's payloads at ``height`` in order; [] if none; None if not committed."""
        if not self._committed(height):
            return None
        row = self._conn.execute(
            "SELECT payloads FROM slices WHERE height = ? AND rollup_id = ?", (height, rollup_id)
        ).fetchone()
        return [] if row is None else self._payloads(row[0], f"{rollup_id}@{height}")

    @api
    def rollup_heights(self, rollup_id: int, from_height: int, limit: int) -> list[int]:
        """Heights ``>= from_height`` where the rollup has transactions, ascending, at most ``limit``."""
        rows = self._conn.execute(
            "SELECT height FROM slices WHERE rollup_id = ? AND height >= ? ORDER BY height LIMIT ?",
            (rollup_id, from_height, max(0, limit)),
        )
        return [h for (h,) in rows]

    @api
    def tx_location(self, tx_id: bytes) -> tuple[int, int, int] | None:
        """``(height, rollup_id, position in that slice)`` of a committed transaction."""
        row = self._conn.execute(
            "SELECT height, rollup_id, position FROM txs WHERE tx_id = ?", (tx_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    @api
    def bundle_location(self, bundle_id: bytes) -> tuple[int, tuple[int, ...]] | None:
        """``(height, leaf indices)`` of a committed bundle."""
        row = self._conn.execute(
            "SELECT height, leaf_indices FROM bundles WHERE bundle_id = ?", (bundle_id,)
        ).fetchone()
        if row is None:
            return None
        return row[0], tuple(self._decode("bundle", lambda b: unpack(b, max_size=1 << 24), row[1]))

    @api
    def rollup_summary(self) -> dict[int, tuple[int, bytes]]:
        """rollup_id -> (committed tx count, running sub-log digest; see storage/records.py)."""
        return {rid: (n, d) for rid, (n, d, _) in sorted(self._rollups.items())}

    @api
    def txs_committed(self) -> int:
        return self._txs

    # -- batches -----------------------------------------------------------------------------------

    @api
    def save_batch(self, digest: bytes, author: int, created_height: int, body: bytes) -> None:
        """Keep a batch body (idempotent; the first body and author stay). A body for a batch
        already committed is kept too, until ``prune_batches`` drops it."""
        if not isinstance(digest, bytes) or len(digest) != 32 or not isinstance(body, bytes):
            raise InvalidRecord("save_batch needs a 32-byte digest and a bytes body")
        with self._transaction("save_batch", durable=False, hooked=False):
            self._conn.execute(
                "INSERT INTO batches VALUES (?, ?, ?, NULL, ?) ON CONFLICT(digest) DO UPDATE SET"
                " author = coalesce(batches.author, excluded.author),"
                " created_height = coalesce(batches.created_height, excluded.created_height),"
                " body = coalesce(batches.body, excluded.body)",
                (digest, author, created_height, body),
            )

    @api
    def load_batch(self, digest: bytes) -> bytes | None:
        row = self._conn.execute("SELECT body FROM batches WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else row[0]

    @api
    def pending_batches(self) -> list[tuple[bytes, int, int, bytes]]:
        """Uncommitted batches ``(digest, author, created_height, body)`` by created height."""
        rows = self._conn.execute(
            "SELECT digest, author, created_height, body FROM batches"
            " WHERE committed_height IS NULL AND body IS NOT NULL ORDER BY created_height, digest"
        )
        return [(d, a, h, b) for d, a, h, b in rows]

    @api
    def batch_committed_height(self, digest: bytes) -> int | None:
        row = self._conn.execute(
            "SELECT committed_height FROM batches WHERE digest = ?", (digest,)
        ).fetchone()
        return None if row is None else row[0]

    @api
    def committed_batches_since(self, height: int) -> list[tuple[bytes, int]]:
        """(digest, committed height) of batches committed at or above ``height``."""
        return [(bytes(d), h) for d, h in self._conn.execute(
            "SELECT digest, committed_height FROM batches WHERE committed_height >= ?", (height,)
        )]

    @api
    def prune_batches(self, below_height: int) -> int:
        """Delete uncommitted batches created below ``below_height`` and drop the bodies of batches
        committed below it (their committed height stays). Returns the number of rows affected."""
        c = self._conn
        with self._transaction("prune_batches", durable=False, hooked=False):
            expired = c.execute(
                "DELETE FROM batches WHERE committed_height IS NULL AND created_height < ?", (below_height,)
            ).rowcount
            emptied = c.execute(
                "UPDATE batches SET body = NULL WHERE committed_height < ? AND body IS NOT NULL",
                (below_height,),
            ).rowcount
        return expired + emptied

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

    @api
    def pending_evidence(self) -> list[Evidence]:
        rows = self._conn.execute(
            "SELECT body FROM evidence WHERE committed_height IS NULL ORDER BY round, evidence_id"
        )
        return [self._decode("evidence", Evidence.decode, body) for (body,) in rows]

    @api
    def evidence_status(self, evidence_id: bytes) -> EvidenceStatus:
        row = self._conn.execute(
            "SELECT committed_height FROM evidence WHERE evidence_id = ?", (evidence_id,)
        ).fetchone()
        if row is None:
            return EvidenceStatus(EvidenceState.UNKNOWN)
        if row[0] is None:
            return EvidenceStatus(EvidenceState.PENDING)
        return EvidenceStatus(EvidenceState.COMMITTED, row[0])

    # -- maintenance -------------------------------------------------------------------------------

    @api
    def integrity_check(self) -> list[str]:
        """SQLite's full ``integrity_check`` (slow on big files): [] when healthy."""
        problems = [str(r[0]) for r in self._conn.execute("PRAGMA integrity_check")]
        return [] if problems == ["ok"] else problems

