"""The SQLite schemas of a replica's two databases, their errors, and the checks made before
opening one.

Both files are marked ``PRAGMA application_id = APPLICATION_ID`` and carry the schema version
:data:`SCHEMA_VERSION` in ``PRAGMA user_version`` and in ``meta``; ``meta.format`` says which of the
two a file is, so swapped files are refused. Every file has::

    meta      key TEXT PK (WITHOUT ROWID)            format, schema_version, chain_id, replica_id
                                                     (+ the ledger's own keys below)

The ledger (``ordo.sqlite``, format :data:`LEDGER_FORMAT`)::

    meta      + committed_height, txs_committed, txs_indexed_height; free keys (``recovered_floor``)
    blocks    height INTEGER PK (rowid), block_id UNIQUE, block = msgpack(Block.to_wire()),
              proof = msgpack(CommitProof.to_wire())
    slices    (height, rollup_id) PK, tx_count, payloads = msgpack list of payloads, or empty when
              the block's batch bodies are stored: the slice is then replayed from them and the
              block's tx ids (``records.FROM_BODIES``; each payload is written once)
                                                 one row per rollup present in a block, never per tx
    block_txs height INTEGER PK (rowid) -> ids = the block's 32-byte tx ids concatenated in tree
              order (its slices concatenated by rollup id); one row per block with transactions
    tx_prefixes (bucket, last_height) PK -> first_height, prefixes = sorted 8-byte id prefixes of
              the blocks first_height..last_height in that bucket: written every ~2^17 txs
              (:mod:`sequencing.storage.txindex`), ~1,000 rows at a time
    bundles   bundle_id PK (WITHOUT ROWID) -> height, leaf_indices = msgpack list of tree positions
    rollups   rollup_id PK -> tx_count, digest, last_height     (running sub-log digest)
    batches   digest PK (WITHOUT ROWID) -> author, created_height, committed_height
              + index (committed_height, created_height)
    batch_bodies digest PK -> body (the encoded batch, as its author sent it); apart from
              ``batches`` so that marking a batch committed rewrites a small row, not its body
    evidence  evidence_id PK (WITHOUT ROWID) -> offender, round, kind, body = Evidence.encode(),
              received_round, committed_height     + index (offender, round)

The safety database (``safety.sqlite``, format :data:`SAFETY_FORMAT`)::

    safety    slot INTEGER PK (= 0)                  SafetyState.encode()
    voted_blocks block_id PK (WITHOUT ROWID) -> height, block: uncommitted blocks this replica
              voted for or proposed, written with the safety state, pruned once committed over

A block's transactions are stored once: in the bodies of the batches that carried them (with the
block's tx ids, which give the split back), or as its slices' payloads when a record comes without
bodies; a committed block is a few rows (one per block, slice, bundle, batch and evidence, and per
rollup touched), never one per transaction.
There is no per-transaction index row: ``tx_location`` finds an id in the newest blocks' ``block_txs``
blobs, kept in memory, or through ``tx_prefixes`` (:mod:`sequencing.storage.txindex`), and the
position of a hit, with the block's slice ``tx_count`` in rollup order, gives the rollup and the
position in its slice.

Schema version 3 kept a batch's body in its ``batches`` row, so the commit that set the row's
``committed_height`` rewrote the whole body (SQLite rewrites a row whole): ~1.3 us of a replica's
storage-thread CPU per committed transaction at 256 bytes, about 45 % of its storage work.
Version 3 also hashed each slice's payloads into the rollups' sub-log digests; version 4 hashes
their tx ids (:mod:`sequencing.storage.records`). Opening a version-3 ledger moves the bodies to
``batch_bodies`` and recomputes every digest from its stored ids, in place, inside the opening
transaction; a version-3 safety file only has its version raised. Builds of version 3 refuse
version 4 files.

Schema version 2 indexed every transaction in its own row (``txs``: ``tx_id`` PK WITHOUT ROWID ->
height, rollup_id, position), ~4 us a row. Opening a version-2 ledger migrates it in place, inside
the opening transaction (all or nothing): each block's ids are rebuilt from its ``txs`` rows in
(rollup, position) order into a ``block_txs`` row, ``tx_prefixes`` is built as the appends would
have built it, and ``txs`` is dropped. A position without a row
(version 2 kept only the first location of an id committed twice) gets its id recomputed from the
stored payload (``digest(b"ordo/tx", [rollup_id, payload])``, the id every replica uses). A
version-2 safety file only has its version raised. Builds of version 2 refuse version 3 files.

Schema version 1 used one layout (all the tables above, format ``ordo-replica-db``) for both files.
Opening a version-1 file migrates it in place, inside the opening transaction (all or nothing):
the tables and indexes the file never used are dropped, after checking they are empty (a
version-1 safety file with blocks, or a ledger with a safety state, is the other file: refused).
"""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

SCHEMA_VERSION = 4
LEGACY_VERSION = 1  # one layout for both files; migrated when opened
TXS_ROWS_VERSION = 2  # one ``txs`` row per transaction; migrated when opened
BODY_IN_ROW_VERSION = 3  # a batch's body in its ``batches`` row; migrated when opened
MIGRATED_VERSIONS = (LEGACY_VERSION, TXS_ROWS_VERSION, BODY_IN_ROW_VERSION)
APPLICATION_ID = 0x6F72646F  # b"ordo"
LEDGER_FORMAT = "ordo-ledger"
SAFETY_FORMAT = "ordo-safety"
LEGACY_FORMAT = "ordo-replica-db"

# Keys of ``meta`` that storage maintains itself; ``set_meta`` refuses them.
RESERVED_META = frozenset(
    {"format", "schema_version", "chain_id", "replica_id", "committed_height", "txs_committed",
     "txs_indexed_height"}
)

META = "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID"
BLOCK_TXS = "CREATE TABLE block_txs (height INTEGER PRIMARY KEY, ids BLOB NOT NULL)"  # new in version 3
TX_PREFIXES = """CREATE TABLE tx_prefixes (
        bucket INTEGER NOT NULL, last_height INTEGER NOT NULL, first_height INTEGER NOT NULL,
        prefixes BLOB NOT NULL, PRIMARY KEY (bucket, last_height))"""  # new in version 3

BATCHES = """CREATE TABLE batches (
        digest BLOB PRIMARY KEY, author INTEGER, created_height INTEGER,
        committed_height INTEGER) WITHOUT ROWID"""
BATCHES_BY_STATE = "CREATE INDEX batches_by_state ON batches (committed_height, created_height)"
BATCH_BODIES = "CREATE TABLE batch_bodies (digest BLOB PRIMARY KEY, body BLOB NOT NULL)"  # new in version 4

LEDGER_SCHEMA = (
    META,
    """CREATE TABLE blocks (
        height INTEGER PRIMARY KEY, block_id BLOB NOT NULL UNIQUE,
        block BLOB NOT NULL, proof BLOB NOT NULL)""",
    """CREATE TABLE slices (
        height INTEGER NOT NULL, rollup_id INTEGER NOT NULL, tx_count INTEGER NOT NULL,
        payloads BLOB NOT NULL, PRIMARY KEY (height, rollup_id))""",
    BLOCK_TXS,
    TX_PREFIXES,
    """CREATE TABLE bundles (
        bundle_id BLOB PRIMARY KEY, height INTEGER NOT NULL, leaf_indices BLOB NOT NULL)
        WITHOUT ROWID""",
    """CREATE TABLE rollups (
        rollup_id INTEGER PRIMARY KEY, tx_count INTEGER NOT NULL, digest BLOB NOT NULL,
        last_height INTEGER NOT NULL)""",
    BATCHES,
    BATCHES_BY_STATE,
    BATCH_BODIES,
    """CREATE TABLE evidence (
        evidence_id BLOB PRIMARY KEY, offender INTEGER NOT NULL, round INTEGER NOT NULL,
        kind INTEGER NOT NULL, body BLOB NOT NULL, received_round INTEGER NOT NULL,
        committed_height INTEGER) WITHOUT ROWID""",
    "CREATE INDEX evidence_by_offender ON evidence (offender, round)",
)
LEDGER_TABLES = (
    "meta", "blocks", "slices", "block_txs", "tx_prefixes", "bundles", "rollups", "batches", "batch_bodies",
    "evidence",
)
# The ledger's tables in versions 1 and 2 (what a version-1 safety file drops).
LEDGER_TABLES_V2 = ("meta", "blocks", "slices", "txs", "bundles", "rollups", "batches", "evidence")

SAFETY_SCHEMA = (
    META,
    "CREATE TABLE safety (slot INTEGER PRIMARY KEY CHECK (slot = 0), state BLOB NOT NULL)",
    """CREATE TABLE voted_blocks (
        block_id BLOB PRIMARY KEY, height INTEGER NOT NULL, block BLOB NOT NULL) WITHOUT ROWID""",
)
SAFETY_TABLES = ("meta", "safety", "voted_blocks")

# Version 1 -> 2: what each file drops. The two indexes served methods only tests used.
LEDGER_DROPS = ("DROP TABLE safety", "DROP TABLE voted_blocks", "DROP INDEX slices_by_rollup",
                "DROP INDEX evidence_pending")
SAFETY_DROPS = (
    *(f"DROP TABLE {t}" for t in LEDGER_TABLES_V2 if t != "meta"),
    "DELETE FROM meta WHERE key IN ('committed_height', 'txs_committed')",
)


class StorageError(Exception):
    """Base of every error this package's storage raises. ``path`` is the database file, when
    the error comes from opening one (set by ``StorageCore.open``)."""

    path: Path | None = None


class MissingDatabase(StorageError):
    """``create=False`` and there is no database (missing or empty file)."""


class CorruptDatabase(StorageError):
    """Not SQLite, not an ordo database, another chain or replica, another schema, or damaged."""


class DatabaseLocked(StorageError):
    """Another process (or another open store) holds the database."""


class InvalidRecord(StorageError):
    """A write that does not fit: a block that does not extend the chain, malformed rows."""


class CrashPoint(Exception):
    """Raised by test crash hooks to stop a write at a named point."""


_SQLITE_MAGIC = b"SQLite format 3\0"
_HEADER = 100


def inspect_file(path: Path) -> bool:
    """Check a database file before SQLite touches it. Returns False if it is missing or empty.

    Raises :class:`CorruptDatabase` for a file that is not SQLite or is shorter than its own
    header says (truncated). The size check is only sound without a WAL to replay, so it is
    skipped when a non-empty ``-wal`` file sits next to the database.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StorageError(f"{path}: cannot stat the database: {exc}") from exc
    if size == 0:
        return False
    try:
        with path.open("rb") as f:
            header = f.read(_HEADER)
    except OSError as exc:
        raise StorageError(f"{path}: cannot read the database: {exc}") from exc
    if len(header) < _HEADER or not header.startswith(_SQLITE_MAGIC):
        raise CorruptDatabase(f"{path}: not a SQLite database (bad header)")
    (raw_page_size,) = struct.unpack_from(">H", header, 16)
    page_size = 65536 if raw_page_size == 1 else raw_page_size
    change_counter, page_count = struct.unpack_from(">II", header, 24)
    (valid_for,) = struct.unpack_from(">I", header, 92)
    wal = path.with_name(path.name + "-wal")
    wal_pending = wal.exists() and wal.stat().st_size > 0
    if not wal_pending and valid_for == change_counter and page_count * page_size > size:
        raise CorruptDatabase(
            f"{path}: truncated: the header says {page_count * page_size} bytes, the file has {size}"
        )
    return True


def translate(exc: sqlite3.Error, path: Path, doing: str) -> StorageError:
    """Map a sqlite3 exception to this module's errors, naming the file and the operation."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    message = f"{path}: {doing}: {exc}"
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return CorruptDatabase(message)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return DatabaseLocked(f"{path}: {doing}: the database is in use by another process or store")
    if not name and type(exc) is sqlite3.DatabaseError:
        return CorruptDatabase(message)
    return StorageError(message)
