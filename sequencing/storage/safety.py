"""The safety database (``safety.sqlite``): the consensus safety state and the uncommitted blocks
this replica voted for or proposed. A file of its own so that a vote's fsync never queues behind a
large commit transaction of the ledger. Every ``save_safety`` is fsync'd (``synchronous=FULL``)
before it returns; ``prune_voted`` is not. Connection, threading, opening and crash hooks:
:mod:`sequencing.storage.core`.
"""

from __future__ import annotations

from collections.abc import Sequence

from consensus.encoding import pack
from consensus.messages import Block
from consensus.safety import SafetyState

from .core import StorageCore, api
from .schema import LEDGER_TABLES_V2, SAFETY_DROPS, SAFETY_FORMAT, SAFETY_SCHEMA

SAFETY_CRASH_POINTS: tuple[str, ...] = ("save_safety:write", "save_safety:before-commit",
                                        "save_safety:after-commit")


class SafetyStore(StorageCore):
    """A replica's safety database; see the module docstring. Create with :meth:`SafetyStore.open`."""

    FORMAT = SAFETY_FORMAT
    SCHEMA = SAFETY_SCHEMA
    LEGACY_FOREIGN = tuple(t for t in LEDGER_TABLES_V2 if t != "meta")  # in a version-1 file
    LEGACY_DROPS = SAFETY_DROPS

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
        leaves blocks that the core skips anyway (at or below its committed root)."""
        with self._transaction("prune_voted", durable=False, hooked=False):
            self._conn.execute("DELETE FROM voted_blocks WHERE height <= ?", (height,))

    @api
    def voted_blocks(self) -> list[Block]:
        """The stored voted blocks, by height; those at or below the committed height (not pruned
        yet) are the caller's to skip."""
        rows = self._conn.execute("SELECT height, block FROM voted_blocks ORDER BY height").fetchall()
        return [self._decode_block(row[1], row[0]) for row in rows]
