"""A replica's two open databases and the one-call-at-a-time worker threads that reach them.

The ledger (``ordo.sqlite``) and the safety store (``safety.sqlite``) each have their own lock, so
a vote's safety write never waits for a ledger write. :meth:`Stores.open` opens both files
(refusing to start on a lost or foreign database unless recovering); the rooms (intake, commits)
and the peer service call through :meth:`ledger_call` / :meth:`safety_call`."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import trio

from ..rollup.batches import Batch
from ..storage import DATABASE_FILES, CorruptDatabase, LedgerStore, MissingDatabase, SafetyStore, open_stores
from .errors import NodeStartError
from .recovery import foreign_database

T = TypeVar("T")


class Stores:
    def __init__(self, max_frame_bytes: int) -> None:
        self._max_frame_bytes = max_frame_bytes  # the largest batch body accepted when loading one
        self.ledger: LedgerStore | None = None  # ordo.sqlite: the committed chain, batches, evidence
        self.safety: SafetyStore | None = None  # safety.sqlite: safety state + voted blocks
        self._ledger_lock = trio.Lock()
        self._safety_lock = trio.Lock()

    async def open(self, directory: Path, *, chain_id: str, replica_id: int, recover: bool,
                   crash_hook: Callable[[str], None] | None = None) -> bool:
        """Open the ledger database and the safety database; if either is missing or unreadable the
        replica may have forgotten what it signed, so it refuses to start (NodeStartError) unless
        ``recover``: then the files are set aside, new ones made, and the answer is True."""
        opener = partial(open_stores, directory, chain_id=chain_id, replica_id=replica_id)
        recovering = False
        try:
            ledger, safety = await trio.to_thread.run_sync(partial(opener, create=False))
        except (MissingDatabase, CorruptDatabase) as exc:
            path = exc.path or directory
            problem = f"{path}: missing or empty" if isinstance(exc, MissingDatabase) else str(exc)
            foreign = foreign_database(path, chain_id, replica_id)
            if foreign is not None:
                raise NodeStartError(f"replica {replica_id}: {foreign}: wrong cluster.toml or data_dir? "
                                     "(not a lost disk: --recover would set this database aside)") from None
            if not recover:
                raise NodeStartError(
                    f"replica {replica_id}: database {problem}. It may have signed messages before losing "
                    "its database; starting it fresh could make it equivocate. Start it with --recover to rebuild "
                    "from peers (it stays silent until it is safe to sign)."
                ) from None
            suffix = f".unreadable-{int(time.time())}"
            for path in (directory / name for name in DATABASE_FILES):
                if path.exists():
                    path.rename(path.with_name(path.name + suffix))
            ledger, safety = await trio.to_thread.run_sync(partial(opener, create=True))
            recovering = True
        if crash_hook is not None:
            ledger.crash_hook = safety.crash_hook = crash_hook
        self.ledger, self.safety = ledger, safety
        return recovering

    def require_ledger(self) -> LedgerStore:
        assert self.ledger is not None, "storage not open"
        return self.ledger

    def require_safety(self) -> SafetyStore:
        assert self.safety is not None, "safety store not open"
        return self.safety

    async def ledger_call(self, fn: Callable[..., T], *args: Any) -> T:
        """A call into the ledger database, in a worker thread, one at a time."""
        async with self._ledger_lock:
            return await trio.to_thread.run_sync(partial(fn, *args))

    async def safety_call(self, fn: Callable[..., T], *args: Any) -> T:
        """A call into the safety database: its own lock, so a vote never waits for a ledger write.
        It runs on the event loop itself: a few small rows and one fsync (~0.2 ms here) cost less
        than the two thread hand-offs of a worker (~60 us of CPU each, and the wake-up latency), and
        nothing may go out before it returns anyway."""
        async with self._safety_lock:
            await trio.lowlevel.checkpoint()
            return fn(*args)

    async def load_batch(self, digest: bytes) -> Batch | None:
        """An own batch (or a committed one) from the ledger, by digest."""
        body = await self.ledger_call(self.require_ledger().load_batch, digest)
        return None if body is None else Batch.decode(body, self._max_frame_bytes)

    async def close(self) -> None:
        if self.ledger is not None:
            await self.ledger_call(self.ledger.close)
        if self.safety is not None:
            await self.safety_call(self.safety.close)
