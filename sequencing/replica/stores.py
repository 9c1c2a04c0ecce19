"""A replica's two open databases and the one-call-at-a-time worker thread that reaches the ledger.

The ledger (``ordo.sqlite``) is reached one call at a time through its worker thread; the safety
store (``safety.sqlite``) is written on the event loop, so a vote's safety write never waits for a
ledger write. :meth:`Stores.open` opens both files
(refusing to start on a lost or foreign database unless recovering); the rooms (intake, commits)
and the peer service call through :meth:`ledger_call` / :meth:`safety_call`.

Ledger calls run on one long-lived :class:`StorageThread` rather than ``trio.to_thread.run_sync``
per call: trio's generic hand-off (capacity limiter, context copy, renaming the OS thread per job)
cost ~43 us of CPU per call here, a deque + a wake-up pipe + ``run_sync_soon`` ~22 us, and an
append, a ``save_batch`` and the API's reads each pay it (and see :class:`StorageThread` on
waking a thread with the GIL held)."""

from __future__ import annotations

import os
import select
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import outcome
import trio

from ..rollup.batches import Batch
from ..storage import DATABASE_FILES, CorruptDatabase, LedgerStore, MissingDatabase, SafetyStore, open_stores
from .errors import NodeStartError
from .recovery import foreign_database

T = TypeVar("T")

_Job = tuple[Callable[[], Any], trio.lowlevel.TrioToken, trio.lowlevel.Task]


class StorageThread:
    """One worker thread that runs the calls handed to :meth:`run` one after another, in the order
    handed in. The caller waits without being cancellable once its call is handed over (as
    ``trio.to_thread.run_sync`` does by default: a write is never abandoned half-way), and the
    thread ends after ``idle`` seconds without work (the next call starts a new one), so a store
    that is never closed leaves no thread behind. At most one call waits per calling task: the
    queue is bounded by the callers (``Stores`` hands over one call at a time).

    The thread is woken through a pipe, not a lock: ``os.write`` releases the GIL around the
    system call, so when the kernel switches to the woken thread there, that thread can run. A
    lock release (``queue.SimpleQueue.put``, trio's thread cache) wakes it with the GIL held, and
    on a busy machine the waker was often switched out still holding it: ~8 % of the replicas'
    GIL-held samples sat on that one line at max load."""

    def __init__(self, name: str, idle: float = 10.0) -> None:
        self._name = name
        self._idle = idle
        self._jobs: deque[_Job] = deque()
        self._wake_read, self._wake_write = os.pipe()
        # closed with the object (its thread holds it while alive), not at exit under a running thread
        weakref.finalize(self, _close, self._wake_read, self._wake_write).atexit = False
        self._mutex = threading.Lock()  # the hand-over vs. the idle thread deciding to end
        self._thread: threading.Thread | None = None

    async def run(self, fn: Callable[[], T]) -> T:
        await trio.lowlevel.checkpoint_if_cancelled()
        job: _Job = (fn, trio.lowlevel.current_trio_token(), trio.lowlevel.current_task())
        with self._mutex:
            self._jobs.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
                self._thread.start()
        os.write(self._wake_write, b"\0")
        result: T = await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)
        return result  # wait_task_rescheduled unwraps the outcome: fn's value, or its exception raised

    def _work(self) -> None:
        jobs, wake = self._jobs, self._wake_read
        while True:
            if not select.select([wake], [], [], self._idle)[0]:
                with self._mutex:
                    if not jobs:
                        self._thread = None
                        return
                continue
            os.read(wake, 4096)  # one byte per job handed over; the jobs are taken below
            while jobs:
                fn, token, task = jobs.popleft()
                result = outcome.capture(fn)
                try:
                    token.run_sync_soon(trio.lowlevel.reschedule, task, result)
                except trio.RunFinishedError:
                    pass  # the caller's trio run is gone: nobody waits for this result


def _close(*fds: int) -> None:
    for fd in fds:
        os.close(fd)


class Stores:
    def __init__(self, max_frame_bytes: int) -> None:
        self._max_frame_bytes = max_frame_bytes  # the largest batch body accepted when loading one
        self.ledger: LedgerStore | None = None  # ordo.sqlite: the committed chain, batches, evidence
        self.safety: SafetyStore | None = None  # safety.sqlite: safety state + voted blocks
        self._ledger_lock = trio.Lock()
        self._ledger_thread = StorageThread("ordo-ledger")

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
        """A call into the ledger database, in the ledger's worker thread, one at a time."""
        async with self._ledger_lock:
            return await self._ledger_thread.run(partial(fn, *args))

    async def safety_call(self, fn: Callable[..., T], *args: Any) -> T:
        """A call into the safety database. It runs on the event loop itself, to completion (so
        no lock is needed: nothing else runs meanwhile): a few small rows and one fsync cost less
        than the two thread hand-offs of a worker (~60 us of CPU each, and the wake-up latency),
        and nothing may go out before it returns anyway. It does not yield to the scheduler: a
        vote's save is on the round's critical path, and at max load each yield waits one pass of
        the other runnable tasks (batches, clients): with a lock and a checkpoint here a vote's save
        took ~7 ms on average, without them ~4.5 ms (mostly the fsync, behind the ledgers' writes)."""
        await trio.lowlevel.checkpoint_if_cancelled()
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
