"""A replica's SQLite storage: two files in its data directory, each with its own store.

``ordo.sqlite`` (:class:`LedgerStore`) holds the committed chain, slices, indexes, batches and
evidence; ``safety.sqlite`` (:class:`SafetyStore`) holds the safety state and voted blocks. Either
missing or unreadable means a lost disk (the replica refuses to start without ``--recover``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .ledger import LEDGER_CRASH_POINTS, LedgerStore
from .records import SUBLOG_SEED, CommitRecord, sublog_step
from .safety import SAFETY_CRASH_POINTS, SafetyStore
from .schema import (
    CorruptDatabase,
    CrashPoint,
    DatabaseLocked,
    InvalidRecord,
    MissingDatabase,
    StorageError,
)

__all__ = [
    "CRASH_POINTS",
    "DATABASE_FILES",
    "LEDGER_FILE",
    "SAFETY_FILE",
    "SUBLOG_SEED",
    "CommitRecord",
    "CorruptDatabase",
    "CrashPoint",
    "DatabaseLocked",
    "InvalidRecord",
    "LedgerStore",
    "MissingDatabase",
    "SafetyStore",
    "StorageError",
    "open_stores",
    "sublog_step",
]

LEDGER_FILE = "ordo.sqlite"
SAFETY_FILE = "safety.sqlite"
DATABASE_FILES = (LEDGER_FILE, SAFETY_FILE)
CRASH_POINTS: tuple[str, ...] = (*LEDGER_CRASH_POINTS, *SAFETY_CRASH_POINTS)


def open_stores(
    directory: Path, *, chain_id: str, replica_id: int, create: bool,
    crash_hook: Callable[[str], None] | None = None,
) -> tuple[LedgerStore, SafetyStore]:
    """Open both databases of one replica (the ledger first); on an error nothing stays open and
    the error's ``path`` names the file."""
    ledger = LedgerStore.open(directory / LEDGER_FILE, chain_id=chain_id, replica_id=replica_id,
                              create=create, crash_hook=crash_hook)
    try:
        safety = SafetyStore.open(directory / SAFETY_FILE, chain_id=chain_id, replica_id=replica_id,
                                  create=create, crash_hook=crash_hook)
    except BaseException:
        ledger.close()
        raise
    return ledger, safety
