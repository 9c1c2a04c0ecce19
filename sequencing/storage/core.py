"""What both stores share: the connection, opening and identity checks, the migration of
version-1 and version-2 files, transactions with crash-hook points, decoding, and sqlite3 error mapping.

Concurrency
    One store is one ``sqlite3`` connection and is NOT thread-safe. The node calls it from a
    single trio task through ``trio.to_thread.run_sync``, so calls never overlap but may run on
    different worker threads (hence ``check_same_thread=False``). Overlapping calls are detected
    and refused with :class:`StorageError` rather than interleaved. The file is held with
    ``locking_mode=EXCLUSIVE``: a second process (or a second store) gets
    :class:`DatabaseLocked`, so two replica processes can never share, and equivocate from, one
    safety state. Do not open() a database file by other means inside the node process: closing
    any descriptor of it drops all of the process's POSIX locks on it, SQLite's included.

Durability
    WAL journal. Each write is one transaction: after a crash at any point the database is exactly
    before or exactly after it. ``durable=True`` writes commit with ``synchronous=FULL`` (the WAL
    is fsync'd at COMMIT); the others with ``NORMAL`` (they survive a killed process, and a power
    loss up to the next fsync'd transaction). Which writes are which: each store's docstring.

Crash hook (tests)
    ``crash_hook(name)`` runs at each named point of a hooked write (the stores' ``CRASH_POINTS``),
    between its statements and right before and after its COMMIT. A hook that raises aborts the
    write (it is rolled back like any other failure); tests snapshot the files inside the hook,
    or kill the process there, to get the on-disk state of a crash at that point.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Concatenate, ParamSpec, Self, TypeVar

from consensus.encoding import unpack
from consensus.errors import DecodeError
from consensus.messages import MAX_MESSAGE_SIZE, Block

from .schema import (
    APPLICATION_ID,
    LEGACY_FORMAT,
    LEGACY_VERSION,
    MIGRATED_VERSIONS,
    SCHEMA_VERSION,
    TXS_ROWS_VERSION,
    CorruptDatabase,
    DatabaseLocked,
    MissingDatabase,
    StorageError,
    inspect_file,
    translate,
)

WAL_CHECKPOINT_BYTES = 40 * 1024 * 1024  # the WAL size that starts a checkpoint

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound="StorageCore")

# Files (st_dev, st_ino) open by a store in this process. Checked before anything reads the file:
# closing ANY descriptor of a file drops all of this process's POSIX locks on it, SQLite's included,
# so even peeking at the header of a file another store here holds would unlock it.
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
            raise StorageError(f"{self.path}: overlapping calls into a store; calls must be serialized")
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
    """The connection, its checks and its transactions; :class:`~sequencing.storage.ledger.LedgerStore`
    and :class:`~sequencing.storage.safety.SafetyStore` add a schema and a data API. Create with
    :meth:`open`."""

    FORMAT: ClassVar[str]  # meta.format of this kind of file
    SCHEMA: ClassVar[tuple[str, ...]]
    LEGACY_FOREIGN: ClassVar[tuple[str, ...]]  # tables of the other file: empty in a version-1 file
    LEGACY_DROPS: ClassVar[tuple[str, ...]]  # version 1 -> 2
    PAGE_SIZE: ClassVar[int] = 4096  # SQLite's default; a new file only (an old one keeps its own)

    def __init__(
        self, conn: sqlite3.Connection, path: Path, *, chain_id: str, replica_id: int,
        crash_hook: Callable[[str], None] | None = None,
    ) -> None:
        self._conn = conn
        self.path = path
        self.chain_id = chain_id
        self.replica_id = replica_id
        self.crash_hook = crash_hook
        self._closed = False
        self._file_key: tuple[int, int] | None = None
        self._lock = threading.RLock()
        self._sync_full: bool | None = None

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: Path, *, chain_id: str, replica_id: int, create: bool,
        crash_hook: Callable[[str], None] | None = None,
    ) -> Self:
        """Open (``create=True``: create if missing or empty) this database of one replica.

        Raises :class:`MissingDatabase`, :class:`CorruptDatabase`, :class:`DatabaseLocked` (with
        ``path`` set)."""
        path = Path(path)
        if not isinstance(chain_id, str) or not chain_id:
            raise ValueError("chain_id must be a non-empty string")
        if not isinstance(replica_id, int) or replica_id < 0:
            raise ValueError("replica_id must be a non-negative integer")
        try:
            with _open_files_lock:
                if _file_key(path) in _open_files:
                    raise DatabaseLocked(f"{path}: already open by another store in this process")
                storage = cls._open(path, chain_id, replica_id, create, crash_hook)
                storage._file_key = _file_key(path)
                if storage._file_key is not None:
                    _open_files.add(storage._file_key)
        except StorageError as exc:
            exc.path = exc.path or path
            raise
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
        storage = cls(conn, path, chain_id=chain_id, replica_id=replica_id, crash_hook=crash_hook)
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
        if not empty and version != SCHEMA_VERSION and version not in MIGRATED_VERSIONS:
            raise CorruptDatabase(
                f"{self.path}: schema version {version}; this build reads version {SCHEMA_VERSION}"
                f" (and migrates {', '.join(map(str, MIGRATED_VERSIONS))})"
            )
        if empty:  # only a new file takes a page size (before WAL mode and the first table)
            c.execute(f"PRAGMA page_size={self.PAGE_SIZE}")
        mode = c.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise StorageError(f"{self.path}: cannot switch to WAL mode (got {mode!r})")
        # 16 MiB: a commit writes a few rows of large blobs (ledger v3), so the hot pages are the
        # tables' interior pages; 64 MiB (for the per-transaction index of v2) held ~60 MB of RSS.
        c.execute("PRAGMA cache_size=-16384")
        # Checkpoint every ~40 MiB of WAL rather than 4: pages dirtied by consecutive blocks are
        # then copied back once (and the safety file, whose few pages every vote rewrites, fsyncs
        # a checkpoint 10x less often). In bytes, whatever the page size: 10,000 pages of 16 KiB
        # made each checkpoint copy ~160 MB at once, a stall of the commits behind it.
        c.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_BYTES // self._page_size()}")
        self._set_sync(True)
        c.execute("BEGIN EXCLUSIVE")  # takes and keeps the file lock
        try:
            if empty:
                self._initialize()
            elif version != SCHEMA_VERSION:
                if version == LEGACY_VERSION:
                    self._migrate()
                if version <= TXS_ROWS_VERSION:
                    self._migrate_from_2()
                self._migrate_from_3()
                c.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
                c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._check_identity()
            self._load_state()
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise

    def _initial_meta(self) -> list[tuple[str, str]]:
        """Meta rows a new file starts with, besides its identity."""
        return []

    def _load_state(self) -> None:
        """Read and check what the store caches (nothing by default), inside the opening transaction."""

    def _initialize(self) -> None:
        c = self._conn
        for statement in self.SCHEMA:
            c.execute(statement)
        c.execute(f"PRAGMA application_id={APPLICATION_ID}")
        c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        c.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("format", self.FORMAT), ("schema_version", str(SCHEMA_VERSION)), ("chain_id", self.chain_id),
            ("replica_id", str(self.replica_id)), *self._initial_meta(),
        ])

    def _migrate_from_2(self) -> None:
        """Turn this kind of file's version-2 layout into the current one (nothing by default),
        inside the opening transaction; the caller then sets the version."""

    def _migrate_from_3(self) -> None:
        """Turn this kind of file's version-3 layout into the current one (nothing by default),
        inside the opening transaction, after any older migration; the caller then sets the version."""

    def _migrate(self) -> None:
        """A version-1 file (one layout for both databases) into the version-2 layout: drop what
        this kind of file never used, after checking that the other kind's tables are empty (else
        it is the other file)."""
        c = self._conn
        row = c.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        if row is None or row[0] != LEGACY_FORMAT:
            raise CorruptDatabase(f"{self.path}: schema version {LEGACY_VERSION} but format {row and row[0]!r}")
        for table in self.LEGACY_FOREIGN:
            if c.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0]:
                raise CorruptDatabase(
                    f"{self.path}: format is {LEGACY_FORMAT!r} with rows in {table!r}: not a"
                    f" {self.FORMAT!r} file (the two database files swapped?)"
                )
        for statement in self.LEGACY_DROPS:
            c.execute(statement)
        c.execute("UPDATE meta SET value = ? WHERE key = 'format'", (self.FORMAT,))

    def _check_identity(self) -> None:
        meta = dict(self._conn.execute(
            "SELECT key, value FROM meta WHERE key IN "
            "('format', 'schema_version', 'chain_id', 'replica_id')"
        ).fetchall())
        expected = {"format": self.FORMAT, "schema_version": str(SCHEMA_VERSION),
                    "chain_id": self.chain_id, "replica_id": str(self.replica_id)}
        for key, want in expected.items():
            if meta.get(key) != want:
                raise CorruptDatabase(
                    f"{self.path}: {key} is {meta.get(key)!r}, expected {want!r}"
                    " (another chain or replica's database, or the other file of the two?)"
                )

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

    def _page_size(self) -> int:
        return int(self._conn.execute("PRAGMA page_size").fetchone()[0])

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
