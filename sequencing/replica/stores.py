"""A replica's two open databases and the one-call-at-a-time worker threads that reach them.

The ledger (``ordo.sqlite``) and the safety store (``safety.sqlite``) each have their own lock, so
a vote's safety write never waits for a ledger write. The node opens the files (storage/) and hands
them in with :meth:`Stores.attach`; the rooms (intake, commits) and the peer service call through
:meth:`ledger_call` / :meth:`safety_call`."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import trio

from ..storage import LedgerStore, SafetyStore

T = TypeVar("T")


class Stores:
    def __init__(self) -> None:
        self.ledger: LedgerStore | None = None  # ordo.sqlite: the committed chain, batches, evidence
        self.safety: SafetyStore | None = None  # safety.sqlite: safety state + voted blocks
        self._ledger_lock = trio.Lock()
        self._safety_lock = trio.Lock()

    def attach(self, ledger: LedgerStore, safety: SafetyStore) -> None:
        self.ledger, self.safety = ledger, safety

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
        """A call into the safety database: its own lock, so a vote never waits for a ledger write."""
        async with self._safety_lock:
            return await trio.to_thread.run_sync(partial(fn, *args))

    async def close(self) -> None:
        if self.ledger is not None:
            await self.ledger_call(self.ledger.close)
        if self.safety is not None:
            await self.safety_call(self.safety.close)
