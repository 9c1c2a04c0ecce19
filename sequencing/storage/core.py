"""The connection under :class:`sequencing.storage.store.Storage`: opening and identity checks, the
cached chain tip, transactions with crash-hook points, and sqlite3 error mapping.

See :mod:`sequencing.storage.store` for the threading and durability contract.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from consensus.encoding import unpack
from consensus.errors import DecodeError
from consensus.messages import MAX_MESSAGE_SIZE, Block, genesis_block

from .records import RollupState
from .schema import (
    APPLICATION_ID,
    FORMAT,
    SCHEMA,
    SCHEMA_VERSION,
    CorruptDatabase,
    DatabaseLocked,
    MissingDatabase,
    StorageError,
    inspect_file,
    translate,
)

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound="StorageCore")

# Files (st_dev, st_ino) open by a Storage in this process. Checked before anything reads the file:
# closing ANY descriptor of a file drops all of this process's POSIX locks on it, SQLite's included,
# so even peeking at the header of a file another Storage here holds would unlock it.
_open_files: set[tuple[int, int]] = set()
_open_files_lock = threading.Lock()


def _file_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def api(method: Callable[Concatenate[C, P], R]) -> Callable[Concatenate[C, P], R]:
    """Public entry: refuse closed or overlapping use; map sqlite3 errors to StorageError."""

    @functools.wraps(method)
    def wrapper(self: C, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._closed:
            raise StorageError(f"{self.path}: storage is closed")
        if not self._lock.acquire(blocking=False):
            raise StorageError(f"{self.path}: overlapping calls into Storage; calls must be serialized")
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise translate(exc, self.path, method.__name__) from exc
        finally:
            self._lock.release()

    return wrapper


class Txn:
    def __init__(self, storage: StorageCore, op: str, hooked: bool) -> None:
        self._storage, self._op, self._hooked = storage, op, hooked
        self.on_commit: list[Callable[[], None]] = []

    def point(self, name: str) -> None:
        hook = self._storage.crash_hook
        if self._hooked and hook is not None:
            hook(f"{self._op}:{name}")


class StorageCore:
    """The connection, its checks and its transactions; :class:`sequencing.storage.store.Storage` adds
    the data API. Create with :meth:`open`."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, *, chain_id: str, replica_id: int, is_new: bool,
        crash_hook: Callable[[str], None] | None = None,
    ) -> None:
        self._conn = conn
        self.path = path
        self.chain_id = chain_id
        self.replica_id = replica_id
        self._is_new = is_new
        self.crash_hook = crash_hook
        self._closed = False
        self._file_key: tuple[int, int] | None = None
        self._lock = threading.RLock()
        self._sync_full: bool | None = None
        self._genesis_id = genesis_block(chain_id).id
        self._height = 0
        self._last_id = self._genesis_id
        self._txs = 0
        self._rollups: dict[int, RollupState] = {}

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: Path, *, chain_id: str, replica_id: int, create: bool,
        crash_hook: Callable[[str], None] | None = None,
    ) -> Self:
        """Open (``create=True``: create if missing or empty) the database of one replica.

        Raises :class:`MissingDatabase`, :class:`CorruptDatabase`, :class:`DatabaseLocked`."""
        path = Path(path)
        if not isinstance(chain_id, str) or not chain_id:
            raise ValueError("chain_id must be a non-empty string")
        if not isinstance(replica_id, int) or replica_id < 0:
            raise ValueError("replica_id must be a non-negative integer")
        with _open_files_lock:
            if _file_key(path) in _open_files:
                raise DatabaseLocked(f"{path}: already open by another Storage in this process")
            storage = cls._open(path, chain_id, replica_id, create, crash_hook)
            storage._file_key = _file_key(path)
            if storage._file_key is not None:
                _open_files.add(storage._file_key)
        return storage

    @classmethod
    def _open(
        cls, path: Path, chain_id: str, replica_id: int, create: bool,
        crash_hook: Callable[[str], None] | None,
    ) -> Self:
        if not inspect_file(path) and not create:
            raise MissingDatabase(f"{path}: no database here (missing or empty file) and create=False")
        uri = f"{path.resolve().as_uri()}?mode={'rwc' if create else 'rw'}"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=0)
        except sqlite3.Error as exc:
            raise translate(exc, path, "open") from exc
        storage = cls(conn, path, chain_id=chain_id, replica_id=replica_id, is_new=False,
                      crash_hook=crash_hook)
        try:
            storage._setup(create)
        except sqlite3.Error as exc:
            conn.close()
            raise translate(exc, path, "open") from exc
        except BaseException:
            conn.close()
            raise
        return storage

    def _setup(self, create: bool) -> None:
        c = self._conn
        c.execute("PRAGMA locking_mode=EXCLUSIVE")
        app_id = c.execute("PRAGMA application_id").fetchone()[0]
        version = c.execute("PRAGMA user_version").fetchone()[0]
        objects = c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        empty = app_id == 0 and version == 0 and objects == 0
        if empty and not create:
            raise MissingDatabase(f"{self.path}: an empty database and create=False")
        if not empty and app_id != APPLICATION_ID:
            raise CorruptDatabase(f"{self.path}: not an ordo database (application_id {app_id:#x})")
        if not empty and version != SCHEMA_VERSION:
            raise CorruptDatabase(
                f"{self.path}: schema version {version}; this build reads version {SCHEMA_VERSION}"
            )
        mode = c.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise StorageError(f"{self.path}: cannot switch to WAL mode (got {mode!r})")
        c.execute("PRAGMA cache_size=-65536")  # 64 MiB: the tx index's inner pages stay cached
        # Checkpoint every ~40 MiB of WAL rather than 4: index pages dirtied by consecutive blocks
        # are then copied back once, about 1.5x the append rate of the default.
        c.execute("PRAGMA wal_autocheckpoint=10000")
        self._set_sync(True)
        c.execute("BEGIN EXCLUSIVE")  # takes and keeps the file lock
        try:
            if empty:
                self._initialize()
            self._check_identity()
            self._load_state()
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
        self._is_new = empty

    def _initialize(self) -> None:
        c = self._conn
        for statement in SCHEMA:
            c.execute(statement)
        c.execute(f"PRAGMA application_id={APPLICATION_ID}")
        c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        c.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("format", FORMAT), ("schema_version", str(SCHEMA_VERSION)), ("chain_id", self.chain_id),
            ("replica_id", str(self.replica_id)), ("committed_height", "0"), ("txs_committed", "0"),
        ])

    def _check_identity(self) -> None:
        meta = dict(self._conn.execute(
            "SELECT key, value FROM meta WHERE key IN "
            "('format', 'schema_version', 'chain_id', 'replica_id')"
        ).fetchall())
        expected = {"format": FORMAT, "schema_version": str(SCHEMA_VERSION),
                    "chain_id": self.chain_id, "replica_id": str(self.replica_id)}
        for key, want in expected.items():
            if meta.get(key) != want:
                raise CorruptDatabase(
                    f"{self.path}: {key} is {meta.get(key)!r}, expected {want!r}"
                    " (another chain or replica's database?)"
                )

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

    def _meta_int(self, key: str) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        try:
            return int(row[0])
        except (TypeError, ValueError):
            raise CorruptDatabase(f"{self.path}: meta {key!r} is missing or not an integer") from None

    def close(self) -> None:
        """Close the connection (idempotent). Checkpoints the WAL into the main file."""
        if not self._closed:
            self._closed = True
            self._conn.close()
            with _open_files_lock:
                if self._file_key is not None:
                    _open_files.discard(self._file_key)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------------

    def _set_sync(self, full: bool) -> None:
        if self._sync_full is not full:
            self._conn.execute(f"PRAGMA synchronous={'FULL' if full else 'NORMAL'}")
            self._sync_full = full

    @contextmanager
    def _transaction(self, op: str, *, durable: bool, hooked: bool = True) -> Iterator[Txn]:
        c = self._conn
        self._set_sync(durable)
        c.execute("BEGIN IMMEDIATE")
        txn = Txn(self, op, hooked)
        try:
            yield txn
            txn.point("before-commit")
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                try:
                    c.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise
        for install in txn.on_commit:
            install()
        txn.point("after-commit")

    def _decode_block(self, blob: bytes, height: int) -> Block:
        try:
            return Block.from_wire(unpack(blob, max_size=MAX_MESSAGE_SIZE))
        except DecodeError as exc:
            raise CorruptDatabase(f"{self.path}: stored block at height {height}: {exc}") from exc

    def _decode(self, what: str, decode: Callable[[Any], R], blob: bytes) -> R:
        try:
            return decode(blob)
        except DecodeError as exc:
            raise CorruptDatabase(f"{self.path}: stored {what}: {exc}") from exc
