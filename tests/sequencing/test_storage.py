"""Replica storage (the ledger and the safety database): round trips, refusals, the migration of
version-1 files, sub-log digests, crash points (in-process snapshots and real SIGKILLs) and, marked
slow, a throughput measurement."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import pickle
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.commit_proof import CommitProof
from consensus.encoding import pack
from consensus.messages import (
    ZERO_ID,
    Block,
    BlockHeader,
    Evidence,
    EvidenceKind,
    QuorumCert,
    genesis_block,
    genesis_qc,
)
from consensus.safety import SafetyState
from sequencing.rollup.batches import Batch
from sequencing.rollup.block_content import BlockPayload, assemble
from sequencing.rollup.nmt import data_root, group_by_namespace
from sequencing.rollup.transactions import Bundle, Transaction
from sequencing.rollup.tx_window import NOTHING_BEFORE, SeenBefore
from sequencing.storage import (
    CRASH_POINTS,
    CommitRecord,
    CorruptDatabase,
    CrashPoint,
    DatabaseLocked,
    InvalidRecord,
    LedgerStore,
    MissingDatabase,
    SafetyStore,
    StorageError,
    txindex,
)
from sequencing.storage.core import StorageCore
from sequencing.storage.schema import LEDGER_TABLES, LEDGER_TABLES_V2, SAFETY_TABLES

ROOT = Path(__file__).resolve().parents[2]
CHAIN = "ordo-test"
GENESIS = genesis_block(CHAIN)
Leaf = tuple[int, bytes]

# -- builders -----------------------------------------------------------------------------------


def h32(*parts: object) -> bytes:
    return hashlib.blake2b(repr(parts).encode(), digest_size=32).digest()


def evidence(offender: int, rnd: int) -> Evidence:
    return Evidence.of(
        EvidenceKind.DOUBLE_VOTE, offender, rnd,
        (h32("a", offender, rnd), bytes([1]) * 64), (h32("b", offender, rnd), bytes([2]) * 64),
    )


def record(
    parent: Block, txs: Sequence[Leaf], *, batches: Sequence[bytes] = (),
    evidence: Sequence[Evidence] = (), root: bytes | None = None, salt: object = None,
) -> CommitRecord:
    """A committed block after ``parent`` with these transactions (any order; grouped here)."""
    order = sorted(range(len(txs)), key=lambda i: txs[i][0])
    leaves = tuple(txs[i] for i in order)
    height, rnd = parent.height + 1, parent.round + 1
    block = Block(
        rnd, height, QuorumCert(rnd - 1, parent.id, ()), height % 4, pack([list(batches)]),
        data_root(leaves) if root is None else root,
    )
    child = BlockHeader(rnd + 1, height + 1, block.id, rnd, 0, ZERO_ID, ZERO_ID)
    proof = CommitProof((block.header(), child), QuorumCert(rnd + 1, child.id, ()))
    tx_ids = b"".join(h32("tx", height, i, salt, *txs[i]) for i in order)
    position = {original: leaf for leaf, original in enumerate(order)}
    bundles = (
        ((h32("bundle", height, salt), tuple(sorted(position[i] for i in range(0, len(txs), 2)))),)
        if len(txs) >= 2 else ()
    )
    return CommitRecord(block, proof, slices_of(leaves), tx_ids, bundles, tuple(batches), tuple(evidence))


def slices_of(leaves: Sequence[Leaf]) -> tuple[tuple[int, tuple[bytes, ...]], ...]:
    """Leaves grouped by rollup id (already in rollup order) -> slices."""
    return tuple((rid, tuple(p for _, p in group)) for rid, group in itertools.groupby(leaves, itemgetter(0)))


def leaves_of(r: CommitRecord) -> tuple[Leaf, ...]:
    return tuple((rid, p) for rid, payloads in r.slices for p in payloads)


def ids_of(r: CommitRecord) -> list[bytes]:
    return [r.tx_ids[i:i + 32] for i in range(0, len(r.tx_ids), 32)]


def chain(blocks: Sequence[Sequence[Leaf]], after: Block = GENESIS, salt: object = None) -> list[CommitRecord]:
    out: list[CommitRecord] = []
    for txs in blocks:
        out.append(record(out[-1].block if out else after, txs, salt=salt))
    return out


def open_db(path: Path, *, create: bool = True, **kw: Any) -> LedgerStore:
    return LedgerStore.open(path, chain_id=CHAIN, replica_id=1, create=create, **kw)


@contextmanager
def db(path: Path, **kw: Any) -> Iterator[LedgerStore]:
    s = open_db(path, **kw)
    try:
        yield s
    finally:
        s.close()


@contextmanager
def safety_db(path: Path, *, create: bool = True, **kw: Any) -> Iterator[SafetyStore]:
    s = SafetyStore.open(path, chain_id=CHAIN, replica_id=1, create=create, **kw)
    try:
        yield s
    finally:
        s.close()


def meta(path: Path) -> dict[str, str]:
    """The meta table of a closed database, as an operator reads it with the sqlite3 shell."""
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())
    finally:
        conn.close()


def copy_db(src: Path, dst: Path) -> Path:
    """The files as a crash would leave them: the database and its WAL (the wal-index is rebuilt)."""
    shutil.copyfile(src, dst)
    wal = src.with_name(src.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, dst.with_name(dst.name + "-wal"))
    return dst


def dump(path: Path, tables: Sequence[str] = LEDGER_TABLES) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


def reference_digests(records: Sequence[CommitRecord]) -> dict[int, tuple[int, bytes]]:
    """The sub-log digest written out from the spec, independent of the module's code."""
    out: dict[int, tuple[int, bytes]] = {}
    for r in records:
        ids = ids_of(r)
        for rid in sorted({rid for rid, _ in leaves_of(r)}):
            mine = [i for (x, _), i in zip(leaves_of(r), ids, strict=True) if x == rid]
            count, d = out.get(rid, (0, bytes(32)))
            d = hashlib.blake2b(d + r.block.height.to_bytes(8, "big") + b"".join(mine), digest_size=32).digest()
            out[rid] = (count + len(mine), d)
    return out


def version_3_digests(path: Path) -> list[tuple[int, int, bytes, int]]:
    """The ``rollups`` rows as version 3 computed them: over each slice's payloads blob."""
    conn = sqlite3.connect(path)
    try:
        out: dict[int, tuple[int, bytes, int]] = {}
        for height, rid, count, blob in conn.execute(
                "SELECT height, rollup_id, tx_count, payloads FROM slices ORDER BY height, rollup_id"):
            n, d, _ = out.get(rid, (0, bytes(32), 0))
            d = hashlib.blake2b(d + height.to_bytes(8, "big") + blob, digest_size=32).digest()
            out[rid] = (n + count, d, height)
        return [(rid, n, d, h) for rid, (n, d, h) in out.items()]
    finally:
        conn.close()


def slice_at(s: LedgerStore, rollup_id: int, height: int) -> list[bytes]:
    return [payload for rid, payloads in s.slices_at(height) or () if rid == rollup_id for payload in payloads]


def check_against(s: LedgerStore, records: Sequence[CommitRecord]) -> None:
    """Everything readable from ``s`` agrees with a direct computation from ``records``."""
    assert s.committed_height() == len(records)
    assert s.txs_committed() == sum(len(leaves_of(r)) for r in records)
    assert s.rollup_summary() == reference_digests(records)
    newest = {tx_id: (r.block.height, i) for r in records for i, tx_id in enumerate(ids_of(r))}
    for r in records:
        h = r.block.height
        block, proof = s.block_at(h) or (None, None)
        assert block == r.block and proof == r.proof
        assert s.block_by_id(r.block.id) == r.block
        assert s.slices_at(h) == r.slices
        for i, tx_id in enumerate(ids_of(r)):
            if newest[tx_id] != (h, i):
                continue  # committed again later: found there
            height, rid, pos = s.tx_location(tx_id) or (0, 0, 0)
            assert height == h and (rid, slice_at(s, rid, h)[pos]) == leaves_of(r)[i]
        for bundle_id, indices in r.bundles:
            assert s.bundle_location(bundle_id) == (h, indices)
    assert s.blocks_between(1, len(records)) == [r.block for r in records]


def txs_for(height: int, n: int = 6) -> list[Leaf]:
    return [((height * 7 + i) % 3 * 5, f"h{height}-tx{i}".encode()) for i in range(n)]


# -- opening and refusing ------------------------------------------------------------------------


def test_create_reopen_and_meta(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with db(path) as s:
        assert s.committed_height() == 0 and s.last_block() is None
        s.set_meta("listen", "127.0.0.1:7000")
        s.set_meta("listen", "127.0.0.1:7001")
        with pytest.raises(InvalidRecord, match="maintained by storage"):
            s.set_meta("committed_height", "5")
    with db(path, create=False) as s:
        assert s.rollup_summary() == {} and s.txs_committed() == 0
    assert not path.with_name("r.db-wal").exists()  # clean close checkpoints
    assert meta(path) == {"format": "ordo-ledger", "schema_version": "4", "chain_id": CHAIN, "replica_id": "1",
                          "committed_height": "0", "txs_committed": "0", "txs_indexed_height": "0",
                          "listen": "127.0.0.1:7001"}


def test_each_file_has_only_its_own_tables(tmp_path: Path) -> None:
    ledger, safety = tmp_path / "ordo.sqlite", tmp_path / "safety.sqlite"
    open_db(ledger).close()
    with safety_db(safety):
        pass
    for path, tables in ((ledger, LEDGER_TABLES), (safety, SAFETY_TABLES)):
        conn = sqlite3.connect(path)
        names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        conn.close()
        assert names == set(tables)
    assert meta(safety) == {"format": "ordo-safety", "schema_version": "4", "chain_id": CHAIN, "replica_id": "1"}
    assert user_version(ledger) == user_version(safety) == 4  # a version-3 build refuses both


def test_the_two_files_swapped_are_refused(tmp_path: Path) -> None:
    ledger, safety = tmp_path / "ordo.sqlite", tmp_path / "safety.sqlite"
    open_db(ledger).close()
    SafetyStore.open(safety, chain_id=CHAIN, replica_id=1, create=True).close()
    with pytest.raises(CorruptDatabase, match=rf"{ledger}.*format is 'ordo-ledger', expected 'ordo-safety'"):
        SafetyStore.open(ledger, chain_id=CHAIN, replica_id=1, create=False)
    with pytest.raises(CorruptDatabase, match="format is 'ordo-safety', expected 'ordo-ledger'") as refused:
        open_db(safety, create=False)
    assert refused.value.path == safety


def test_missing_or_empty_file_without_create(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(MissingDatabase, match=str(path)):
        open_db(path, create=False)
    assert not path.exists()
    path.write_bytes(b"")
    with pytest.raises(MissingDatabase, match=str(path)):
        open_db(path, create=False)
    open_db(path).close()  # an empty file is a fresh database when create=True
    assert meta(path)["committed_height"] == "0"


def test_foreign_chain_or_replica(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    open_db(path).close()
    with pytest.raises(CorruptDatabase, match=rf"{path}.*chain_id.*other"):
        LedgerStore.open(path, chain_id="other", replica_id=1, create=True)
    with pytest.raises(CorruptDatabase, match=rf"{path}.*replica_id"):
        LedgerStore.open(path, chain_id=CHAIN, replica_id=2, create=False)
    open_db(path, create=False).close()  # refusals leave it usable


@pytest.mark.parametrize("content", [b"hello, not a database" * 100, b"tiny", os.urandom(8192)])
def test_garbage_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(content)
    with pytest.raises(CorruptDatabase, match=str(path)):
        open_db(path)
    assert path.read_bytes() == content


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with db(path) as s:
        s.append_many(chain([txs_for(h, 50) for h in range(1, 30)]))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptDatabase, match=rf"{path}.*truncated"):
        open_db(path, create=False)
    path.write_bytes(data[:60])
    with pytest.raises(CorruptDatabase, match=str(path)):
        open_db(path, create=False)


def test_damaged_pages(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    records = chain([txs_for(h, 50) for h in range(1, 30)])
    with db(path) as s:
        s.append_many(records)
    data = bytearray(path.read_bytes())
    data[LedgerStore.PAGE_SIZE:3 * LedgerStore.PAGE_SIZE] = b"\xff" * (2 * LedgerStore.PAGE_SIZE)  # pages 2 and 3
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptDatabase, match=str(path)):
        open_db(path, create=False)


def test_undecodable_rows_are_corruption(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with db(path) as s:
        s.append_many(chain([txs_for(1), txs_for(2)]))
        s._conn.execute("UPDATE blocks SET block = x'c1' WHERE height = 1")
        s._conn.execute("UPDATE slices SET payloads = x'93' WHERE height = 2")
        for read in (lambda: s.block_at(1), lambda: s.slices_at(2)):
            with pytest.raises(CorruptDatabase, match=rf"{path}: stored"):
                read()
        assert s.block_at(2) is not None
    path = tmp_path / "safety.db"
    with safety_db(path) as safety:
        safety.save_safety(SafetyState.initial(genesis_qc(CHAIN)), [r.block for r in chain([txs_for(1)])])
        safety._conn.execute("UPDATE safety SET state = x'00'")
        safety._conn.execute("UPDATE voted_blocks SET block = x'c1'")
        for read in (safety.load_safety, safety.voted_blocks):
            with pytest.raises(CorruptDatabase, match=rf"{path}: stored"):
                read()


def test_a_tx_index_mark_beyond_the_chain_is_corruption(tmp_path: Path) -> None:
    """Catches a ledger opened with meta.txs_indexed_height above its chain: blocks there would
    be neither in the window nor in tx_prefixes, so their ids would never be found."""
    path = tmp_path / "r.db"
    with db(path) as s:
        s.append_many(chain([txs_for(1), txs_for(2)]))
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'txs_indexed_height'")
    conn.commit()
    conn.close()
    with pytest.raises(CorruptDatabase, match=rf"{path}: txs_indexed_height 3"):
        open_db(path, create=False)


def test_foreign_sqlite_and_schema_version(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    with pytest.raises(CorruptDatabase, match=rf"{other}.*not an ordo database"):
        open_db(other)
    assert other.read_bytes() == before  # not converted to WAL, not touched

    path = tmp_path / "r.db"
    open_db(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.commit()
    conn.close()
    with pytest.raises(CorruptDatabase, match=rf"{path}.*schema version 99"):
        open_db(path, create=False)


def test_empty_sqlite_file_counts_as_new(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")  # what a crash during the first open can leave
    conn.close()
    with pytest.raises(MissingDatabase):
        open_db(path, create=False)
    open_db(path).close()
    assert meta(path)["format"] == "ordo-ledger"


def test_second_open_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with db(path):
        with pytest.raises(DatabaseLocked, match=str(path)):
            open_db(path)
        code = (
            "import sys; from pathlib import Path; from sequencing.storage import LedgerStore, DatabaseLocked\n"
            "try: LedgerStore.open(Path(sys.argv[1]), chain_id=sys.argv[2], replica_id=1, create=False)\n"
            "except DatabaseLocked: sys.exit(3)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code, str(path), CHAIN], cwd=ROOT, check=False)
        assert proc.returncode == 3
    open_db(path, create=False).close()


def test_closed_and_overlapping_use(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def hook(name: str) -> None:
        if name == "append:slices":
            def other() -> None:
                try:
                    s.committed_height()
                except StorageError as exc:
                    errors.append(exc)
            t = threading.Thread(target=other)
            t.start()
            t.join()

    s = open_db(tmp_path / "r.db", crash_hook=hook)
    s.append(chain([txs_for(1)])[0])
    assert len(errors) == 1 and "overlapping" in str(errors[0])
    s.close()
    s.close()
    with pytest.raises(StorageError, match="closed"):
        s.committed_height()


# -- schema version 1 (one layout for both files) -------------------------------------------------

# What version 1 had beyond each file's own tables (sequencing/storage/schema.py before the split).
V1_SAFETY_PART = (
    "CREATE TABLE safety (slot INTEGER PRIMARY KEY CHECK (slot = 0), state BLOB NOT NULL)",
    "CREATE TABLE voted_blocks (block_id BLOB PRIMARY KEY, height INTEGER NOT NULL, block BLOB NOT NULL)"
    " WITHOUT ROWID",
)
V1_LEDGER_INDEXES = (
    "CREATE INDEX slices_by_rollup ON slices (rollup_id, height)",
    "CREATE INDEX evidence_pending ON evidence (round) WHERE committed_height IS NULL",
)


def as_version_1(path: Path, *, ledger_tables_from: Path) -> None:
    """Rewrite a closed version-4 file into the version-1 layout the old code wrote for both files:
    every table, format 'ordo-replica-db', schema version 1 (``ledger_tables_from``: an empty
    ledger whose DDL supplies the ledger tables a safety file lacks)."""
    as_version_2(path)
    as_version_2(ledger_tables_from)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        present = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "blocks" in present:
            statements = [*V1_SAFETY_PART, *V1_LEDGER_INDEXES]
        else:
            source = sqlite3.connect(ledger_tables_from)
            statements = [sql for (sql,) in source.execute(
                "SELECT sql FROM sqlite_master WHERE name != 'meta' AND sql IS NOT NULL")]
            source.close()
            statements += [*V1_LEDGER_INDEXES, "INSERT INTO meta VALUES ('committed_height', '0')",
                           "INSERT INTO meta VALUES ('txs_committed', '0')"]
        for sql in statements:
            conn.execute(sql)
        conn.execute("UPDATE meta SET value = 'ordo-replica-db' WHERE key = 'format'")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        conn.execute("PRAGMA user_version=1")
    finally:
        conn.close()


# Version 3's batches table, the body in the row (sequencing/storage/schema.py before version 4).
V3_BATCHES = """CREATE TABLE batches (
        digest BLOB PRIMARY KEY, author INTEGER, created_height INTEGER,
        committed_height INTEGER, body BLOB) WITHOUT ROWID"""


def as_version_3(path: Path) -> None:
    """Rewrite a closed version-4 file as version 3 wrote it: a ledger's batch bodies in their
    ``batches`` rows, no ``batch_bodies``, the sub-log digests over payloads; schema version 3.
    Idempotent."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] != 4:
            return
        conn.execute("BEGIN")
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'batch_bodies'").fetchone():
            rows = conn.execute("SELECT b.digest, author, created_height, committed_height, body FROM batches b"
                                " LEFT JOIN batch_bodies d ON d.digest = b.digest").fetchall()
            conn.execute("DROP TABLE batches")
            conn.execute("DROP TABLE batch_bodies")
            conn.execute(V3_BATCHES)
            conn.execute("CREATE INDEX batches_by_state ON batches (committed_height, created_height)")
            conn.executemany("INSERT INTO batches VALUES (?, ?, ?, ?, ?)", rows)
            conn.execute("DELETE FROM rollups")
            conn.executemany("INSERT INTO rollups VALUES (?, ?, ?, ?)", version_3_digests(path))
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
        conn.execute("PRAGMA user_version=3")
        conn.execute("COMMIT")
    finally:
        conn.close()


# Version 2's per-transaction index (sequencing/storage/schema.py before version 3).
V2_TXS = """CREATE TABLE txs (
        tx_id BLOB PRIMARY KEY, height INTEGER NOT NULL, rollup_id INTEGER NOT NULL,
        position INTEGER NOT NULL) WITHOUT ROWID"""


def as_version_2(path: Path) -> None:
    """Rewrite a closed version-4 file as version 2 wrote it (through :func:`as_version_3`): a
    ledger's tx ids as one ``txs`` row per transaction, the first location of an id committed
    twice kept (INSERT OR IGNORE in height order), no ``block_txs`` nor ``tx_prefixes``; schema
    version 2. Idempotent."""
    as_version_3(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] != 3:
            return
        conn.execute("BEGIN")
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'block_txs'").fetchone():
            conn.execute(V2_TXS)
            for height, ids in conn.execute("SELECT height, ids FROM block_txs ORDER BY height").fetchall():
                at = 0
                for rid, count in conn.execute(
                    "SELECT rollup_id, tx_count FROM slices WHERE height = ? ORDER BY rollup_id", (height,)
                ).fetchall():
                    conn.executemany("INSERT OR IGNORE INTO txs VALUES (?, ?, ?, ?)", [
                        (ids[32 * (at + pos):32 * (at + pos + 1)], height, rid, pos) for pos in range(count)])
                    at += count
            conn.execute("DROP TABLE block_txs")
            conn.execute("DROP TABLE tx_prefixes")
            conn.execute("DELETE FROM meta WHERE key = 'txs_indexed_height'")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
        conn.execute("PRAGMA user_version=2")
        conn.execute("COMMIT")
    finally:
        conn.close()


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def table_names(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')"
                                           " AND name NOT LIKE 'sqlite_%'")}
    finally:
        conn.close()


@pytest.fixture
def v1_files(tmp_path: Path) -> tuple[Path, Path, list[CommitRecord], SafetyState]:
    """A version-1 ledger (3 blocks, evidence, batches) and safety file (a state, voted blocks)."""
    ledger, safety, empty = tmp_path / "ordo.sqlite", tmp_path / "safety.sqlite", tmp_path / "empty.sqlite"
    records = chain([txs_for(1), [], txs_for(3)])
    with db(ledger) as s:
        s.save_batch(h32("batch"), 1, 0, b"body")
        s.save_evidence(evidence(2, 3), 3)
        s.append_many(records)
    state = SafetyState(5, QuorumCert(4, records[2].block.id, ()), 0)
    with safety_db(safety) as safe:
        safe.save_safety(state, [r.block for r in records])
    open_db(empty).close()
    as_version_1(ledger, ledger_tables_from=empty)
    as_version_1(safety, ledger_tables_from=empty)
    return ledger, safety, records, state


def test_version_1_files_are_migrated_when_opened(
    v1_files: tuple[Path, Path, list[CommitRecord], SafetyState],
) -> None:
    ledger, safety, records, state = v1_files
    assert user_version(ledger) == user_version(safety) == 1
    assert {"safety", "voted_blocks", "blocks"} <= table_names(ledger) & table_names(safety)
    for _ in range(2):  # migrated once, then opened as version 4
        with db(ledger, create=False) as s:
            check_against(s, records)
            assert dict(s.committed_batches_since(0)) == {} and s.load_batch(h32("batch")) == b"body"
            assert s.evidence_list() == [(evidence(2, 3), None)]
        with safety_db(safety, create=False) as safe:
            assert safe.load_safety() == state
            assert [b.id for b in safe.voted_blocks()] == [r.block.id for r in records]
    assert user_version(ledger) == user_version(safety) == 4
    assert table_names(ledger) == {*LEDGER_TABLES, "batches_by_state", "evidence_by_offender"}
    assert table_names(safety) == set(SAFETY_TABLES)
    assert meta(ledger)["format"] == "ordo-ledger" and meta(ledger)["committed_height"] == "3"
    assert meta(safety) == {"format": "ordo-safety", "schema_version": "4", "chain_id": CHAIN, "replica_id": "1"}


def test_version_1_files_swapped_or_foreign_are_refused_untouched(
    v1_files: tuple[Path, Path, list[CommitRecord], SafetyState],
) -> None:
    ledger, safety, _, _ = v1_files
    before = {path: dump(path, [*LEDGER_TABLES_V2, "safety", "voted_blocks"]) for path in (ledger, safety)}
    with pytest.raises(CorruptDatabase, match=rf"{ledger}: .*rows in 'blocks'.*swapped"):
        SafetyStore.open(ledger, chain_id=CHAIN, replica_id=1, create=False)
    with pytest.raises(CorruptDatabase, match=rf"{safety}: .*rows in 'safety'.*swapped"):
        open_db(safety, create=False)
    with pytest.raises(CorruptDatabase, match="chain_id"):  # after the drops: all rolled back
        LedgerStore.open(ledger, chain_id="other", replica_id=1, create=False)
    for path in (ledger, safety):
        assert user_version(path) == 1
        assert dump(path, [*LEDGER_TABLES_V2, "safety", "voted_blocks"]) == before[path]


def txs_rows_version_2(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM txs ORDER BY height, rollup_id, position").fetchall()
    finally:
        conn.close()


@pytest.fixture(params=[1 << 17, 4], ids=["unflushed", "flushed"])
def v2_ledger(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
) -> tuple[Path, list[CommitRecord], dict[str, list[tuple[Any, ...]]]]:
    """A version-2 ledger (one ``txs`` row per transaction) of 5 blocks where the transaction
    (2, b"b") is committed at heights 1 and 4 with its real id (version 2 indexed the first
    copy only), and the version-3 rows the same blocks write (``FLUSH_TXS`` as the param)."""
    monkeypatch.setattr(txindex, "FLUSH_TXS", request.param)
    path = tmp_path / "ordo.sqlite"
    real = Transaction(2, b"b").id
    records = chain([[(1, b"a"), (2, b"b"), (3, b"c")], txs_for(2), [], [(2, b"b"), (0, b"z")], txs_for(5, 30)])
    for at, (height, index) in enumerate(((1, 1), (4, 1))):
        r = records[height - 1]
        ids = ids_of(r)
        ids[index] = real
        records[height - 1] = CommitRecord(r.block, r.proof, r.slices, b"".join(ids), r.bundles, (), ())
        assert at == 0 or records[height - 1].block.parent_id == records[height - 2].block.id
    with db(path) as s:
        s.save_batch(h32("batch"), 1, 0, b"body")
        s.append_many(records)
        expected = {t: sorted(s._conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in LEDGER_TABLES}
    as_version_2(path)
    return path, records, expected


def test_version_2_ledger_is_migrated_when_opened(
    v2_ledger: tuple[Path, list[CommitRecord], dict[str, list[tuple[Any, ...]]]],
) -> None:
    """The txs rows become exactly the block_txs rows version 3 writes (the uncovered position of
    the id committed twice recomputed from its payload), every id is found, txs is gone. Catches
    a migration that drops or misplaces ids, or that leaves the index behind."""
    path, records, expected = v2_ledger
    assert user_version(path) == 2 and "block_txs" not in table_names(path)
    rows = txs_rows_version_2(path)
    assert len(rows) == sum(len(ids_of(r)) for r in records) - 1  # the second copy had no row
    assert (Transaction(2, b"b").id, 1, 2, 0) in rows
    for _ in range(2):  # migrated once, then opened as version 4
        with db(path, create=False) as s:
            check_against(s, records)
            assert s.tx_location(Transaction(2, b"b").id) == (4, 2, 0)
            assert s.load_batch(h32("batch")) == b"body"
    assert user_version(path) == 4 and meta(path)["schema_version"] == "4"
    assert table_names(path) == {*LEDGER_TABLES, "batches_by_state", "evidence_by_offender"}
    assert dump(path) == expected


def test_version_2_ledger_refused_during_migration_is_left_untouched(
    v2_ledger: tuple[Path, list[CommitRecord], dict[str, list[tuple[Any, ...]]]],
) -> None:
    path, _, _ = v2_ledger
    before = dump(path, LEDGER_TABLES_V2)
    with pytest.raises(CorruptDatabase, match="chain_id"):  # checked after the migration: rolled back
        LedgerStore.open(path, chain_id="other", replica_id=1, create=False)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO txs VALUES (?, 9, 0, 0)", (h32("orphan"),))
    conn.commit()
    conn.close()
    before = dump(path, LEDGER_TABLES_V2)
    with pytest.raises(CorruptDatabase, match=r"txs row .* is in no slice"):
        open_db(path, create=False)
    assert user_version(path) == 2 and dump(path, LEDGER_TABLES_V2) == before


def test_version_3_ledger_is_migrated_when_opened(tmp_path: Path) -> None:
    """Every batch row and body of a version-3 ledger (pending with a body, committed with one,
    committed without one, a body the commit itself carried) comes through the move to
    ``batch_bodies`` exactly: the dump after migrating equals the version-4 file it was made from,
    twice (opened again as version 4). Catches a migration that loses bodies or batch states."""
    path, safety = tmp_path / "ordo.sqlite", tmp_path / "safety.sqlite"
    d = [h32("batch", i) for i in range(4)]
    first = record(GENESIS, txs_for(1), batches=[d[1], d[2], d[3]])
    first = dataclasses.replace(first, batch_bodies=(b"late1", b"b2", b"b3"))  # d[1]'s first body stays
    with db(path) as s:
        s.save_batch(d[0], 1, 0, b"pending")
        s.save_batch(d[1], 2, 0, b"saved")
        s.append(first)
        s.save_batch(h32("bare"), 0, 1, b"x")
        s.append(record(first.block, txs_for(2), batches=[h32("bare"), h32("never saved")]))
        expected = dump_live(s)
    with safety_db(safety) as safe:
        safe.save_safety(SafetyState.initial(genesis_qc(CHAIN)))
    assert expected["batch_bodies"] == sorted(
        [(d[0], b"pending"), (d[1], b"saved"), (d[2], b"b2"), (d[3], b"b3"), (h32("bare"), b"x")], key=repr)
    as_version_3(path)
    as_version_3(safety)
    assert user_version(path) == user_version(safety) == 3 and "batch_bodies" not in table_names(path)
    assert dump(path, ["rollups"])["rollups"] != expected["rollups"]  # version 3's digests, over payloads
    for _ in range(2):  # migrated once, then opened as version 4
        with db(path, create=False) as s:
            assert [p[:2] for p in s.pending_batches()] == [(d[0], 1)]
            assert s.load_batch(d[1]) == b"saved" and s.load_batch(h32("never saved")) is None
        with safety_db(safety, create=False) as safe:
            assert safe.load_safety() == SafetyState.initial(genesis_qc(CHAIN))
    assert user_version(path) == user_version(safety) == 4 and meta(path)["schema_version"] == "4"
    assert table_names(path) == {*LEDGER_TABLES, "batches_by_state", "evidence_by_offender"}
    assert dump(path) == expected


def test_version_3_ledger_refused_during_migration_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ordo.sqlite"
    with db(path) as s:
        s.save_batch(h32("b"), 1, 0, b"body")
        s.append(record(GENESIS, txs_for(1), batches=[h32("b")]))
    as_version_3(path)
    before = dump(path, [*LEDGER_TABLES[:-2], "evidence"])
    with pytest.raises(CorruptDatabase, match="chain_id"):  # checked after the migration: rolled back
        LedgerStore.open(path, chain_id="other", replica_id=1, create=False)
    assert user_version(path) == 3 and dump(path, [*LEDGER_TABLES[:-2], "evidence"]) == before


def test_a_new_file_takes_its_kinds_page_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """New files take their kind's page size (bigger pages for the ledger's large blobs); a file
    made with another page size keeps it and opens as before."""
    ledger, safety, other = tmp_path / "ordo.sqlite", tmp_path / "safety.sqlite", tmp_path / "other.sqlite"
    open_db(ledger).close()
    with safety_db(safety):
        pass

    def page_size(path: Path) -> int:
        conn = sqlite3.connect(path)
        try:
            return int(conn.execute("PRAGMA page_size").fetchone()[0])
        finally:
            conn.close()

    assert (page_size(ledger), page_size(safety)) == (LedgerStore.PAGE_SIZE, SafetyStore.PAGE_SIZE)
    assert LedgerStore.PAGE_SIZE > SafetyStore.PAGE_SIZE == 4096
    for store in (open_db(ledger, create=False), SafetyStore.open(safety, chain_id=CHAIN, replica_id=1, create=False)):
        # a checkpoint starts at the same WAL size in bytes whatever the page size
        pages = store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        store.close()
        assert pages * store.PAGE_SIZE == 40 * 1024 * 1024
    records = chain([txs_for(1), txs_for(2)])
    with monkeypatch.context() as m:
        m.setattr(LedgerStore, "PAGE_SIZE", 8192)
        with db(other) as s:
            s.append(records[0])
    with db(other, create=False) as s:
        s.append(records[1])
        check_against(s, records)
    assert page_size(other) == 8192


# -- safety state -------------------------------------------------------------------------------


def test_safety_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "safety.db"
    with safety_db(path) as s:
        assert s.load_safety() is None
        s.save_safety(SafetyState.initial(genesis_qc(CHAIN)))
        state = SafetyState(7, QuorumCert(6, h32("b6"), ((0, b"\1" * 64), (2, b"\2" * 64))), 3)
        s.save_safety(state)
        assert s.load_safety() == state
    with safety_db(path, create=False) as s:
        assert s.load_safety() == state


# -- the committed chain ------------------------------------------------------------------------


def test_append_round_trip_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    records = chain([txs_for(1), [], txs_for(3, 1), txs_for(4, 20)])
    with db(path) as s:
        for r in records:
            s.append(r)
        check_against(s, records)
        assert s.slices_at(2) == ()
        assert s.slices_at(0) is None and s.slices_at(5) is None
        assert s.slices_at(0) is None and s.slices_at(5) is None
        assert s.block_at(5) is None and s.block_at(0) is None
        assert s.tx_location(h32("nope")) is None and s.bundle_location(h32("nope")) is None
        assert s.block_by_id(GENESIS.id) is None
        last = s.last_block()
        assert last is not None and last[0] == records[-1].block
        assert s.blocks_between(2, 3) == [records[1].block, records[2].block]
        assert s.blocks_between(3, 2) == []
    with db(path, create=False) as s:
        check_against(s, records)


def test_append_refuses_what_does_not_extend_the_chain(tmp_path: Path) -> None:
    records = chain([txs_for(h) for h in (1, 2, 3)])
    fork = chain([txs_for(1, 3)], salt="fork")[0]
    with db(tmp_path / "r.db") as s:
        s.append(records[0])
        before = dump_live(s)
        with pytest.raises(InvalidRecord, match="height 3, expected 2"):
            s.append(records[2])
        with pytest.raises(InvalidRecord, match="height 1, expected 2"):
            s.append(records[0])
        wrong_parent = record(fork.block, txs_for(2))
        with pytest.raises(InvalidRecord, match="parent"):
            s.append(wrong_parent)
        r = records[1]
        bad = [
            CommitRecord(r.block, records[0].proof, r.slices, r.tx_ids, r.bundles, (), ()),
            CommitRecord(r.block, r.proof, r.slices, r.tx_ids[:-32], r.bundles, (), ()),
            CommitRecord(r.block, r.proof, r.slices, r.tx_ids + b"x", r.bundles, (), ()),
            CommitRecord(r.block, r.proof, r.slices, tuple(ids_of(r)), r.bundles, (), ()),  # type: ignore[arg-type]
            CommitRecord(r.block, r.proof, r.slices[::-1], r.tx_ids, r.bundles, (), ()),
            CommitRecord(r.block, r.proof, (*r.slices[:1], *r.slices[:1]), r.tx_ids, r.bundles, (), ()),
            CommitRecord(r.block, r.proof, ((-1, (b"a",)),), r.tx_ids[:32], (), (), ()),
            CommitRecord(r.block, r.proof, ((2**32, (b"a",)),), r.tx_ids[:32], (), (), ()),
            CommitRecord(r.block, r.proof, ((True, (b"a",)),), r.tx_ids[:32], (), (), ()),
            CommitRecord(r.block, r.proof, ((1, ()),), b"", (), (), ()),
            CommitRecord(r.block, r.proof, ((1, (b"a", "b")),), r.tx_ids[:64], (), (), ()),  # type: ignore[arg-type]
            CommitRecord(r.block, r.proof, ((1, b"ab"),), r.tx_ids[:64], (), (), ()),  # type: ignore[arg-type]
            CommitRecord(r.block, r.proof, r.slices, r.tx_ids, ((h32("x"), (99,)),), (), ()),
            CommitRecord(r.block, r.proof, r.slices, r.tx_ids, ((h32("x"), (len(ids_of(r)),)),), (), ()),
            CommitRecord(r.block, r.proof, r.slices, r.tx_ids, ((h32("x"), (-1,)),), (), ()),
            CommitRecord(r.block, r.proof, r.slices, r.tx_ids, r.bundles, (b"short",), ()),
        ]
        assert len(r.slices) == 3
        for b in bad:
            with pytest.raises(InvalidRecord):
                s.append(b)
        # append_many is all or nothing: a bad third block leaves nothing of the first two
        with pytest.raises(InvalidRecord):
            s.append_many([records[1], records[2], wrong_parent])
        assert dump_live(s) == before and s.committed_height() == 1
        s.append_many([])
        s.append_many(records[1:])
        check_against(s, records)


def dump_live(s: LedgerStore) -> dict[str, list[tuple[Any, ...]]]:
    return {t: sorted(s._conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in LEDGER_TABLES}


def test_a_commit_writes_rows_per_rollup_not_per_transaction(tmp_path: Path) -> None:
    """1,000 transactions over 5 rollups: one row for the block and one for its tx ids, one per
    slice and per rollup touched, per bundle and per batch, and the two meta values. Catches an
    index row per transaction (schema version 2 wrote 1,000 ``txs`` rows here)."""
    txs = [(i % 5, b"p%d" % i) for i in range(1000)]
    r = record(GENESIS, txs, batches=[h32("batch")])
    with db(tmp_path / "r.db") as s:
        def counts() -> dict[str, int]:
            return {t: s._conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in LEDGER_TABLES}

        before, changes = counts(), s._conn.total_changes
        s.append(r)
        written = {t: n - before[t] for t, n in counts().items()}
        assert written == {"meta": 0, "blocks": 1, "slices": 5, "block_txs": 1, "tx_prefixes": 0, "bundles": 1,
                           "rollups": 5, "batches": 1, "batch_bodies": 0, "evidence": 0}
        assert s._conn.total_changes - changes == 1 + 5 + 1 + 1 + 5 + 1 + 2  # + meta's two updates
        check_against(s, [r])


def spliced(a: bytes, b: bytes) -> bytes:
    """An id that occurs in ``a + b`` only across the boundary (not at a 32-byte offset)."""
    return a[16:] + b[:16]


@pytest.mark.parametrize("flush", [1 << 17, 10, 0])
def test_tx_location_in_the_window_and_in_older_rows(
    tmp_path: Path, flush: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ids are found in the in-memory window and through ``tx_prefixes`` (``flush`` small: most
    blocks are flushed), also after a reopen, at a 32-byte boundary only. Catches a lookup that
    stops at the window, loses the block at a flush's edge, or takes a match across two ids (a
    hit at an unaligned offset) for a transaction."""
    monkeypatch.setattr(txindex, "FLUSH_TXS", flush)
    blocks = [txs_for(h, 6 if h % 4 else 0) for h in range(1, 30)]
    records = chain(blocks)
    path = tmp_path / "r.db"
    with db(path) as s:
        for r in records:
            s.append(r)
            check_against(s, records[:r.block.height])
        assert (s._indexed > 0) == (flush < 100)
        window = s._window
    with db(path, create=False) as s:
        check_against(s, records)
        assert (s._indexed > 0) == (flush < 100) and s._window == window
        first, second = ids_of(records[0])[:2]
        assert s.tx_location(spliced(first, second)) is None
        assert s.tx_location(first[:8] + bytes(24)) is None  # another id with a committed id's prefix
        # ids that also occur unaligned, earlier in their own block or in a newer block: skipped
        p, q, y, z = h32("p"), h32("q"), h32("y"), h32("z")
        x, w = spliced(p, q), spliced(y, z)
        extra = record(records[-1].block, [(7, b"p"), (7, b"q"), (7, b"x"), (8, b"w")])
        extra = CommitRecord(extra.block, extra.proof, extra.slices, p + q + x + w, (), (), ())
        newer = record(extra.block, [(1, b"y"), (1, b"z")])
        newer = CommitRecord(newer.block, newer.proof, newer.slices, y + z, (), (), ())
        more = chain([txs_for(h) for h in range(32, 45)], after=newer.block)
        s.append_many([extra, newer, *more])
        assert s.tx_location(x) == (30, 7, 2) and s.tx_location(w) == (30, 8, 0)
        assert s.tx_location(y) == (31, 1, 0)
        assert s.tx_location(spliced(*ids_of(more[-1])[2:4])) is None
        assert s.tx_location(b"short") is None and s.tx_location(h32("nope")) is None


@pytest.mark.parametrize("flush", [1 << 17, 3, 0])
def test_a_tx_id_committed_twice_is_found_at_its_newest_location(
    tmp_path: Path, flush: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Version 3 looks ids up newest block first (version 2 kept the first location), in the
    window, in one flush and across flushes."""
    monkeypatch.setattr(txindex, "FLUSH_TXS", flush)
    first = record(GENESIS, [(1, b"a"), (2, b"b")])
    again = record(first.block, [(2, b"b")])
    again = CommitRecord(again.block, again.proof, again.slices, ids_of(first)[1], (), (), ())
    with db(tmp_path / "r.db") as s:
        s.append_many([first, again, *chain([txs_for(3)], after=again.block)])
        assert s.tx_location(ids_of(first)[1]) == (2, 2, 0)
        assert s.tx_location(ids_of(first)[0]) == (1, 1, 0)
        assert slice_at(s, 2, 2) == [b"b"] and s.rollup_summary()[2][0] == 2


# -- slices kept as the batch bodies ------------------------------------------------------------


def bodies_record(parent: Block, batches: Sequence[Batch], before: SeenBefore = NOTHING_BEFORE) -> CommitRecord:
    """What the node writes for a block of real batches: the split's content, with the bodies."""
    content = assemble(batches, before)
    height, rnd = parent.height + 1, parent.round + 1
    payload = BlockPayload(tuple(b.digest for b in batches), ()).encode()
    block = Block(rnd, height, QuorumCert(rnd - 1, parent.id, ()), 0, payload, content.data_root)
    child = BlockHeader(rnd + 1, height + 1, block.id, rnd, 0, ZERO_ID, ZERO_ID)
    proof = CommitProof((block.header(), child), QuorumCert(rnd + 1, child.id, ()))
    return CommitRecord(block, proof, content.slices, content.tx_ids, content.bundles,
                        tuple(b.digest for b in batches), (), tuple(b.body for b in batches))


def replay_blocks() -> list[CommitRecord]:
    """Two blocks: the second repeats some of the first's transactions (its window skips them),
    carries duplicates inside it, a bundle taken and one skipped whole."""
    a = [Transaction(r, b"a%d-%d" % (r, i)) for r in (1, 3, 5) for i in range(70)]
    first = bodies_record(GENESIS, [Batch.of(0, 1, 0, a[:40])])
    second = [Batch.of(1, 1, 0, (*a[20:150], Bundle((Transaction(3, b"b0"), Transaction(5, b"b1"))))),
              Batch.of(2, 1, 0, (*a[140:], Bundle((a[0], Transaction(7, b"new")))))]
    return [first, bodies_record(first.block, second, SeenBefore(None, 0, -1, [set(ids_of(first))]))]


def test_a_block_stored_with_its_batch_bodies_writes_each_payload_once_and_reads_the_same(tmp_path: Path) -> None:
    """The slice rows of a record with batch bodies hold no payloads (the bodies do); the slices
    read back, replayed from the bodies, are the split's, before and after reopening. Catches a
    replay that differs from the split (the window's skips, duplicates, bundles) or payloads
    written twice."""
    records = replay_blocks()
    assert records[1].tx_count < sum(len(b) for b in records[1].batch_bodies)  # the window skipped some
    path = tmp_path / "r.db"
    with db(path) as s:
        s.append_many(records)
        for r in records:
            assert s.slices_at(r.block.height) == r.slices
        rows = s._conn.execute("SELECT payloads FROM slices").fetchall()
        assert rows and all(blob == b"" for (blob,) in rows)
        last_rollup, last_slice = records[1].slices[-1]
        assert s.tx_location(records[1].tx_ids[-32:]) == (2, last_rollup, len(last_slice) - 1)
    with db(path, create=False) as s:
        assert [s.slices_at(r.block.height) for r in records] == [r.slices for r in records]


@pytest.mark.parametrize("damage", ["body gone", "body of another batch", "count changed"])
def test_a_replay_that_cannot_give_the_stored_slices_back_is_corruption(tmp_path: Path, damage: str) -> None:
    records = replay_blocks()
    path = tmp_path / "r.db"
    with db(path) as s:
        s.append_many(records)
        digests = records[1].batch_digests
        c = s._conn
        if damage == "body gone":
            c.execute("DELETE FROM batch_bodies WHERE digest = ?", (digests[1],))
        elif damage == "body of another batch":
            c.execute("UPDATE batch_bodies SET body = ? WHERE digest = ?", (records[0].batch_bodies[0], digests[1]))
        else:
            c.execute("UPDATE slices SET tx_count = tx_count + 1 WHERE height = 2 AND rollup_id = 1")
        assert s.slices_at(1) == records[0].slices
        with pytest.raises(CorruptDatabase, match=f"{path}: .*block 2"):
            s.slices_at(2)


# -- batches and evidence -----------------------------------------------------------------------


def test_batches(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    d = [h32("batch", i) for i in range(5)]
    with db(path) as s:
        for i in range(4):
            s.save_batch(d[i], i % 4, i, b"body%d" % i)
        s.save_batch(d[0], 3, 9, b"other")  # idempotent: first body and author stay
        assert s.load_batch(d[0]) == b"body0" and s.load_batch(d[4]) is None
        assert [p[0] for p in s.pending_batches()] == d[:4]
        assert s.pending_batches()[0] == (d[0], 0, 0, b"body0")
        first = record(GENESIS, txs_for(1), batches=[d[0], d[4]])  # d[4]: body unknown yet
        second = record(first.block, txs_for(2), batches=[d[0], d[1]])  # d[0] again: stays at 1
        s.append_many([first, second])
        committed = dict(s.committed_batches_since(0))
        assert committed == {d[0]: 1, d[1]: 2, d[4]: 1} and s.committed_batches_since(2) == [(d[1], 2)]
        assert [p[0] for p in s.pending_batches()] == d[2:4]
        s.save_batch(d[4], 1, 0, b"late body")
        assert s.load_batch(d[4]) == b"late body" and dict(s.committed_batches_since(0))[d[4]] == 1
        # below 3: uncommitted d[2] (created 2) has expired; committed batches keep their bodies
        # (catch-up serves them to lagging replicas)
        assert s.prune_batches(3, keep={d[2]}) == 0 and s.load_batch(d[2]) == b"body2"
        assert s.prune_batches(3) == 1
        assert s.load_batch(d[2]) is None and d[2] not in dict(s.committed_batches_since(0))
        assert [s.load_batch(x) for x in (d[0], d[1], d[4])] == [b"body0", b"body1", b"late body"]
        assert [p[0] for p in s.pending_batches()] == [d[3]]
        assert s.prune_batches(3) == 0
    with db(path, create=False) as s:
        assert s.load_batch(d[3]) == b"body3" and dict(s.committed_batches_since(0)) == committed


def test_a_batch_replaces_expired_ones_in_its_write(tmp_path: Path) -> None:
    old, new, again = h32("old"), h32("new"), h32("again")
    with db(tmp_path / "r.db") as s:
        s.save_batch(old, 0, 1, b"old")
        s.save_batch(new, 0, 5, b"new", replaces=[old, new, h32("unknown")])  # itself, unknown: no-ops
        assert [p[0] for p in s.pending_batches()] == [new]
        s.append(record(GENESIS, txs_for(1), batches=[new]))
        s.save_batch(again, 0, 6, b"again", replaces=[new])  # committed rows stay
        assert s.load_batch(new) == b"new" and dict(s.committed_batches_since(0)) == {new: 1}
        assert [p[0] for p in s.pending_batches()] == [again]


def test_evidence(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    e1, e2, e3, e4 = evidence(1, 5), evidence(2, 3), evidence(1, 8), evidence(3, 1)
    with db(path) as s:
        assert s.evidence_list() == []
        assert s.save_evidence(e1, 5) and s.save_evidence(e2, 4) and s.save_evidence(e3, 9)
        assert not s.save_evidence(e1, 6)
        assert s.evidence_list() == [(e2, None), (e1, None), (e3, None)]
        assert [e for e, _ in s.evidence_list(offender=1)] == [e1, e3]
        first = record(GENESIS, txs_for(1), evidence=[e1, e4])  # e4 was never seen before
        second = record(first.block, txs_for(2), evidence=[e1])  # committed again: stays at 1
        s.append_many([first, second])
        assert not s.save_evidence(e1, 10)  # never downgrades to pending
        assert s.evidence_list() == [(e4, 1), (e2, None), (e1, 1), (e3, None)]
        assert s.evidence_list(limit=1) == [(e4, 1)] and s.evidence_list(offender=9) == []
    with db(path, create=False) as s:
        assert s.evidence_list() == [(e4, 1), (e2, None), (e1, 1), (e3, None)]


@contextmanager
def flushing(txs: int, blocks: int) -> Iterator[None]:
    """txindex's flush thresholds set for the block (hypothesis tests cannot use monkeypatch)."""
    saved = txindex.FLUSH_TXS, txindex.FLUSH_BLOCKS
    txindex.FLUSH_TXS, txindex.FLUSH_BLOCKS = txs, blocks
    try:
        yield
    finally:
        txindex.FLUSH_TXS, txindex.FLUSH_BLOCKS = saved


# -- properties ---------------------------------------------------------------------------------

tx_strategy = st.tuples(
    st.one_of(st.integers(0, 4), st.sampled_from([2**32 - 1, 1000])), st.binary(max_size=12)
)
blocks_strategy = st.lists(st.lists(tx_strategy, max_size=25), min_size=1, max_size=8)


@given(blocks=blocks_strategy, cuts=st.lists(st.integers(1, 8), max_size=3),
       flush=st.sampled_from([(1 << 17, 1 << 10), (4, 1 << 10), (0, 1 << 10), (1 << 17, 1)]))
def test_slices_index_and_digests_match_a_direct_computation(
    blocks: list[list[Leaf]], cuts: list[int], flush: tuple[int, int],
) -> None:
    """Also: the tx index holds the same rows however the blocks were grouped into appends."""
    records = chain(blocks)
    with flushing(*flush), tempfile.TemporaryDirectory() as tmp:
        one, many = Path(tmp) / "one.db", Path(tmp) / "many.db"
        with db(one) as a, db(many) as b:
            for r in records:
                a.append(r)
            edges = [0, *sorted(c for c in cuts if c < len(records)), len(records)]
            for lo, hi in itertools.pairwise(edges):
                b.append_many(records[lo:hi])
            check_against(a, records)
            check_against(b, records)
            assert dump_live(a) == dump_live(b)
            assert all(leaves_of(r) == tuple(group_by_namespace(leaves_of(r))) for r in records)
        with db(one, create=False) as a:
            check_against(a, records)


@given(blocks=blocks_strategy, data=st.data())
def test_digests_differ_exactly_where_a_sub_log_differs(blocks: list[list[Leaf]], data: Any) -> None:
    records = chain(blocks)
    candidates = [(i, j) for i, txs in enumerate(blocks) for j in range(len(txs))]
    with tempfile.TemporaryDirectory() as tmp, db(Path(tmp) / "a.db") as a, db(Path(tmp) / "b.db") as b:
        a.append_many(records)
        if not candidates:
            b.append_many(records)
            assert a.rollup_summary() == b.rollup_summary()
            return
        i, j = data.draw(st.sampled_from(candidates))
        changed = [list(txs) for txs in blocks]
        rid, payload = changed[i][j]
        changed[i][j] = (rid, payload + b"!")
        b.append_many(chain(changed))
        sa, sb = a.rollup_summary(), b.rollup_summary()
        assert sa.keys() == sb.keys()
        assert {k for k in sa if sa[k] != sb[k]} == {rid}


def test_moving_a_tx_to_another_height_changes_the_digest(tmp_path: Path) -> None:
    with db(tmp_path / "a.db") as a, db(tmp_path / "b.db") as b:
        a.append_many(chain([[(1, b"x")], [], [(1, b"y")]]))
        b.append_many(chain([[(1, b"x")], [(1, b"y")], []]))
        assert a.rollup_summary()[1][0] == b.rollup_summary()[1][0] == 2
        assert a.rollup_summary() != b.rollup_summary()


# -- crashes ------------------------------------------------------------------------------------

E_COMMITTED, E_PENDING, E_NEW = evidence(1, 2), evidence(2, 3), evidence(3, 4)
B_PENDING = h32("batch", "pending")
_B1 = record(GENESIS, txs_for(1))
_B2 = record(_B1.block, txs_for(2), evidence=[E_COMMITTED])
BASE = [_B1, _B2, record(_B2.block, txs_for(3))]
NEXT = record(BASE[2].block, txs_for(4, 30), batches=[B_PENDING, h32("batch", "new")],
              evidence=[E_PENDING, E_NEW])
MANY = [NEXT, *chain([txs_for(5), [], txs_for(7)], after=NEXT.block)]
OLD_SAFETY = SafetyState(9, QuorumCert(8, BASE[2].block.id, ()), 0)
NEW_SAFETY = SafetyState(10, QuorumCert(9, h32("b9"), ()), 0)
OPS: dict[str, list[tuple[str, tuple[Any, ...]]]] = {
    "append": [("append", (NEXT,))],
    "append_many": [("append_many", (MANY,))],
    # a crash hits the first save; the second (already committed) must change nothing
    "save_evidence": [("save_evidence", (E_NEW, 11)), ("save_evidence", (E_COMMITTED, 11))],
    "save_safety": [("save_safety", (NEW_SAFETY, [NEXT.block]))],
}
STORE: dict[str, type[StorageCore]] = {op: SafetyStore if op == "save_safety" else LedgerStore for op in OPS}


def store_of(op: str, path: Path, **kw: Any) -> StorageCore:
    return STORE[op].open(path, chain_id=CHAIN, replica_id=1, create=False, **kw)


def tables_of(op: str) -> Sequence[str]:
    return SAFETY_TABLES if STORE[op] is SafetyStore else LEDGER_TABLES


def build_base(ledger: Path, safety: Path) -> None:
    with db(ledger) as s:
        s.save_evidence(E_COMMITTED, 1)
        s.save_evidence(E_PENDING, 2)
        s.save_batch(B_PENDING, 0, 2, b"pending body")
        s.append_many(BASE)
    with safety_db(safety) as safe:
        safe.save_safety(OLD_SAFETY, [BASE[2].block])


def run_ops(s: StorageCore, op: str) -> None:
    for method, args in OPS[op]:
        getattr(s, method)(*args)


@pytest.fixture(scope="module")
def crash_states(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The base databases and their contents before and after each operation."""
    tmp = tmp_path_factory.mktemp("crash")
    bases = {LedgerStore: tmp / "base-ledger.db", SafetyStore: tmp / "base-safety.db"}
    build_base(bases[LedgerStore], bases[SafetyStore])
    states: dict[str, Any] = {}
    for op in OPS:
        base = bases[STORE[op]]
        states[op, "base"], states[op, "before"] = base, dump(base, tables_of(op))
        path = copy_db(base, tmp / f"after-{op}.db")
        with store_of(op, path) as s:
            run_ops(s, op)
        states[op, "after"] = dump(path, tables_of(op))
        assert states[op, "after"] != states[op, "before"]
    return states


def check_recovered(path: Path, point: str, states: dict[str, Any]) -> None:
    op, where = point.split(":")
    with store_of(op, path) as s:  # opens cleanly: recovery, identity, tip checks
        if isinstance(s, SafetyStore):
            assert s.load_safety() in (OLD_SAFETY, NEW_SAFETY)
        else:
            assert isinstance(s, LedgerStore)
            assert (E_COMMITTED, 2) in s.evidence_list()  # never back to pending
            check_against(s, BASE + ([] if s.committed_height() == 3 else [NEXT] if op == "append" else MANY))
    expected = states[op, "after" if where == "after-commit" else "before"]
    assert dump(path, tables_of(op)) == expected


def test_every_crash_point_is_reached(tmp_path: Path, crash_states: dict[str, Any]) -> None:
    seen: list[str] = []
    for op in OPS:
        path = copy_db(crash_states[op, "base"], tmp_path / f"{op}.db")
        with store_of(op, path, crash_hook=seen.append) as s:
            run_ops(s, op)
    assert set(seen) == set(CRASH_POINTS)


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_snapshot_at(point: str, tmp_path: Path, crash_states: dict[str, Any]) -> None:
    """Snapshot the files at the point (what a kill leaves on disk), then reopen the snapshot."""
    op = point.split(":", maxsplit=1)[0]
    work = copy_db(crash_states[op, "base"], tmp_path / "work.db")
    snapshot = tmp_path / "crashed.db"

    def hook(name: str) -> None:
        if name == point:
            copy_db(work, snapshot)
            raise CrashPoint(name)

    with store_of(op, work, crash_hook=hook) as s, pytest.raises(CrashPoint):
        run_ops(s, op)
    check_recovered(snapshot, point, crash_states)


@pytest.mark.parametrize("point", ["append:txindex", "append:meta", "append:before-commit", "append:after-commit"])
def test_a_crash_in_an_append_that_flushes_the_tx_index(
    tmp_path: Path, point: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An append that also writes tx_prefixes rows (a flush) is all or nothing like any other:
    the snapshot at each point reopens as before or after it, every id found."""
    monkeypatch.setattr(txindex, "FLUSH_TXS", 4)
    records = chain([txs_for(h) for h in range(1, 7)])
    work, snapshot = tmp_path / "work.db", tmp_path / "crashed.db"
    with db(work) as s:
        s.append_many(records[:-1])
        indexed = s._indexed
    before = dump(work)

    def hook(name: str) -> None:
        if name == point:
            copy_db(work, snapshot)
            raise CrashPoint(name)

    with db(work, create=False, crash_hook=hook) as s, pytest.raises(CrashPoint):
        s.append(records[-1])
    with db(snapshot, create=False) as s:
        done = point == "append:after-commit"
        check_against(s, records if done else records[:-1])
        assert (s._indexed > indexed) == done
    assert (dump(snapshot) == before) != (point == "append:after-commit")


CHILD = """
import os, pickle, signal, sys
from pathlib import Path
import sequencing.storage
path, point, job = sys.argv[1:4]
chain_id, store, ops = pickle.loads(Path(job).read_bytes())
def hook(name):
    if name == point:
        os.kill(os.getpid(), signal.SIGKILL)
s = getattr(sequencing.storage, store).open(Path(path), chain_id=chain_id, replica_id=1, create=False,
                                            crash_hook=hook)
for method, args in ops:
    getattr(s, method)(*args)
    print(method, s.committed_height() if hasattr(s, "committed_height") else 0, flush=True)
"""


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_sigkill_at(point: str, tmp_path: Path, crash_states: dict[str, Any]) -> None:
    """A real ``kill -9`` of a child process at the point, then reopen the same files."""
    op = point.split(":", maxsplit=1)[0]
    work = copy_db(crash_states[op, "base"], tmp_path / "work.db")
    job = tmp_path / "job.pickle"
    job.write_bytes(pickle.dumps((CHAIN, STORE[op].__name__, OPS[op])))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(work), point, str(job)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    check_recovered(work, point, crash_states)


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_while_streaming_appends(seed: int, tmp_path: Path) -> None:
    """Kill a writer at an arbitrary moment: everything it reported committed is there, intact."""
    rng = random.Random(seed)
    records = chain([txs_for(h, rng.randrange(0, 40)) for h in range(1, 401)])
    path = tmp_path / "r.db"
    open_db(path).close()
    job = tmp_path / "job.pickle"
    ops = [("append", (r,)) if i % 3 else ("append_many", ([r],)) for i, r in enumerate(records)]
    job.write_bytes(pickle.dumps((CHAIN, "LedgerStore", ops)))
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), "-", str(job)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    target, reported = rng.randrange(5, 120), 0
    for line in proc.stdout:
        reported = int(line.split()[1])
        if reported >= target:
            break
    time.sleep(rng.random() * 0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    with db(path, create=False) as s:
        height = s.committed_height()
        assert reported <= height <= len(records)
        check_against(s, records[:height])


# -- throughput ---------------------------------------------------------------------------------


def bench_records(blocks: int, per_block: int, rollups: int) -> list[CommitRecord]:
    rng = random.Random(7)
    out: list[CommitRecord] = []
    parent = GENESIS
    for height in range(1, blocks + 1):
        leaves = tuple(sorted(((rng.randrange(rollups), rng.randbytes(100)) for _ in range(per_block)),
                              key=lambda leaf: leaf[0]))
        rnd = parent.round + 1
        block = Block(rnd, height, QuorumCert(rnd - 1, parent.id, ()), 0, b"", rng.randbytes(32))
        child = BlockHeader(rnd + 1, height + 1, block.id, rnd, 0, ZERO_ID, ZERO_ID)
        proof = CommitProof((block.header(), child), QuorumCert(rnd + 1, child.id, ()))
        tx_ids = rng.randbytes(32 * len(leaves))
        out.append(CommitRecord(block, proof, slices_of(leaves), tx_ids, (), (rng.randbytes(32),), ()))
        parent = block
    return out


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@pytest.mark.slow
def test_throughput(tmp_path: Path) -> None:
    blocks, per_block = 1000, 1000
    records = bench_records(blocks, per_block, rollups=10)
    with db(tmp_path / "one.db") as s:
        one = timed(lambda: [s.append(r) for r in records])
        assert s.txs_committed() == blocks * per_block
    with db(tmp_path / "many.db") as s:
        many = timed(lambda: [s.append_many(records[i:i + 50]) for i in range(0, blocks, 50)])
        assert s.committed_height() == blocks
    for name, secs in (("append", one), ("append_many(50)", many)):
        print(f"\n{name}: {blocks / secs:.0f} blocks/s, {blocks * per_block / secs:.0f} tx/s")
    assert blocks * per_block / one > 10_000


def test_voted_blocks_are_saved_with_the_safety_state_and_pruned(tmp_path: Path) -> None:
    records = chain([txs_for(1), txs_for(2), txs_for(3)])
    blocks = [r.block for r in records]
    qc = QuorumCert(1, blocks[0].id, ())
    path = tmp_path / "safety.sqlite"
    with safety_db(path) as s:
        s.save_safety(SafetyState(2, qc), blocks[:2])
        s.save_safety(SafetyState(3, qc), [blocks[2]])
        assert [b.id for b in s.voted_blocks()] == [b.id for b in blocks]
    with safety_db(path, create=False) as s:
        assert [b.id for b in s.voted_blocks()] == [b.id for b in blocks]
        s.prune_voted(2)
        assert [b.id for b in s.voted_blocks()] == [blocks[2].id]
    assert [row[1] for row in dump(path, SAFETY_TABLES)["voted_blocks"]] == [3]


# -- durability of each write ----------------------------------------------------------------------

SYNC_FULL, SYNC_NORMAL = 2, 1
# (store, a NORMAL write on it, the durable write)
DURABLE_WRITES: dict[str, tuple[type[StorageCore], Callable[[Any], object], Callable[[Any], object]]] = {
    "save_safety": (SafetyStore, lambda s: s.prune_voted(0),
                    lambda s: s.save_safety(SafetyState.initial(genesis_qc(CHAIN)))),
    "append": (LedgerStore, lambda s: s.save_batch(h32("batch"), 0, 0, b"body"),
               lambda s: s.append(chain([[(1, b"a")]])[0])),
    "save_evidence": (LedgerStore, lambda s: s.save_batch(h32("batch"), 0, 0, b"body"),
                      lambda s: s.save_evidence(evidence(1, 5), 5)),
}


@pytest.mark.parametrize("op", sorted(DURABLE_WRITES))
def test_durable_writes_commit_with_synchronous_full(tmp_path: Path, op: str) -> None:
    """The safety state (and the other hooked writes the docstrings call durable) is committed with
    PRAGMA synchronous=FULL, i.e. the WAL is fsync'd before the call returns, even right after a
    NORMAL write on the same connection. Read inside the transaction, at its crash points."""
    seen: list[int] = []
    store, normal_write, durable_write = DURABLE_WRITES[op]
    with store.open(tmp_path / "r.db", chain_id=CHAIN, replica_id=1, create=True) as s:

        def hook(name: str) -> None:
            if name.startswith(f"{op}:"):
                seen.append(s._conn.execute("PRAGMA synchronous").fetchone()[0])

        normal_write(s)  # leaves the connection at NORMAL
        assert s._conn.execute("PRAGMA synchronous").fetchone()[0] == SYNC_NORMAL
        s.crash_hook = hook
        durable_write(s)
    assert seen and all(level == SYNC_FULL for level in seen), seen
