"""Client intake: items into the mempool, the mempool into own batches on disk, then to every peer.

``submit`` validates and queues an item (``submit_many`` a client's list, with per-item outcomes);
every ``batch_interval`` the batcher (:meth:`run`) cuts the
mempool into batches, writes each (an acknowledgement waits for that write: ``wait_durable``),
adds it to the pool and broadcasts it. After a restart it sends its stored batches again (peers
may lack them). An own batch that expired uncommitted has its items queued again; its row is
deleted in the write of the batch that takes the last of them (docs/ARCHITECTURE.md, "Batches
expire"). The arrival time of the first transaction of each client call is kept for the
commit-latency metric (a sample, so a commit looks up a few ids, not every one)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice

import trio

from ..config import Limits
from ..rollup.batches import Batch, BatchPool
from ..rollup.transactions import InvalidTransaction, Item, Run, item_txs
from .mempool import Entry, Mempool, MempoolFull, entry_ids
from .metrics import NodeMetrics
from .stores import Stores
from .wire import BatchMsg, PeerLink

MEMPOOL_FULL = "mempool full; retry later"


@dataclass(frozen=True, slots=True)
class Submitted:
    """What became of each item of a :meth:`ClientIntake.submit_many` call: True (queued), False
    (a duplicate of a recent item) or the reason it was refused; ``busy`` if the mempool filled."""

    outcomes: list[bool | str]
    busy: bool

    @property
    def accepted(self) -> int:
        return self.outcomes.count(True)  # outcomes are bools or strings: only True counts


class ClientIntake:
    def __init__(
        self, *, me: int, limits: Limits, interval: float, mempool: Mempool, batches: BatchPool,
        stores: Stores, metrics: NodeMetrics, link: PeerLink, connected_peers: Callable[[], object],
        committed_height: Callable[[], int],
        batch_added: Callable[[], None],
    ) -> None:
        self._me = me
        self._limits = limits
        self._interval = interval
        self._mempool = mempool
        self._batches = batches
        self._stores = stores
        self._metrics = metrics
        self._link = link
        self._connected_peers = connected_peers
        self._committed_height = committed_height
        self._batch_added = batch_added
        self._batch_seq = 0
        self._rebatching: dict[bytes, set[bytes]] = {}  # expired own batch -> its items not re-batched yet
        self.submitted_at: dict[bytes, float] = {}  # tx id -> arrival time (read and removed at commit)
        self.durable_arrival = 0  # every mempool arrival up to this one is in a batch on disk
        self._batched = trio.Event()

    def submit(self, item: Item) -> bool:
        """Validate and queue a client item; raises InvalidTransaction / MempoolFull.
        Returns False for a duplicate of a recently seen item."""
        item.validate(self._limits)
        added = self._mempool.add(item)
        self._metrics.submissions.labels("accepted" if added else "duplicate").inc()
        if added:
            self._note_arrival(item_txs(item)[0].id)
        self._set_mempool_gauges()
        return added

    def submit_many(self, items: Sequence[Item]) -> Submitted:
        """:meth:`submit` for a client's list of items, with the metrics and gauges updated once.
        A full mempool refuses that item and every later one (``busy``); an invalid item is refused
        alone. Never raises for a client's input."""
        outcomes: list[bool | str] = []
        first: bytes | None = None
        busy = False
        for item in items:
            if busy:
                outcomes.append(MEMPOOL_FULL)
                continue
            try:
                item.validate(self._limits)
                added = self._mempool.add(item)
            except InvalidTransaction as exc:  # AlreadySubmitted too
                outcomes.append(str(exc))
                continue
            except MempoolFull as exc:
                busy = True
                outcomes.append(str(exc))
                continue
            outcomes.append(added)
            if added and first is None:
                first = item_txs(item)[0].id
        return self._submitted(outcomes, busy, first)

    def submit_runs(self, runs: Sequence[Run]) -> Submitted:
        """Queue a client's plain transactions, grouped in runs whose payloads the caller checked
        against the limits: one outcome per transaction, the runs' in order. A full mempool
        refuses the rest (``busy``). Work per run, not per transaction (Mempool.add_run)."""
        outcomes: list[bool | str] = []
        first: bytes | None = None
        full: str | None = None
        for run in runs:
            if full is not None:
                outcomes.extend([full] * len(run))
                continue
            added = self._mempool.add_run(run)
            outcomes.extend(added.outcomes)
            if first is None and True in added.outcomes:
                first = run.ids[added.outcomes.index(True)]
            if added.full is not None:
                full = str(added.full)
                outcomes.extend([full] * (len(run) - len(added.outcomes)))
        return self._submitted(outcomes, full is not None, first)

    def _submitted(self, outcomes: list[bool | str], busy: bool, first: bytes | None) -> Submitted:
        """Count a call's outcomes in the metrics and time its first new transaction."""
        result = Submitted(outcomes, busy)
        duplicates = outcomes.count(False)
        if result.accepted:
            self._metrics.submissions.labels("accepted").inc(result.accepted)
        if duplicates:
            self._metrics.submissions.labels("duplicate").inc(duplicates)
        if first is not None:
            self._note_arrival(first)
        self._set_mempool_gauges()
        return result

    def _note_arrival(self, tx_id: bytes) -> None:
        """Time the first new transaction of a client's call (a sample: one per request, so the
        commit path looks up a few ids per block, not every one)."""
        self.submitted_at[tx_id] = trio.current_time()
        if len(self.submitted_at) > 2 * self._limits.mempool_max_txs:  # some never commit: drop the oldest half
            for stale in list(islice(self.submitted_at, len(self.submitted_at) - self._limits.mempool_max_txs)):
                del self.submitted_at[stale]

    def _set_mempool_gauges(self) -> None:
        self._metrics.mempool_txs.set(self._mempool.tx_count)
        self._metrics.mempool_bytes.set(self._mempool.byte_size)

    def is_pending(self, item_id: bytes) -> bool:
        return self._mempool.seen(item_id)

    async def wait_durable(self, arrival: int, timeout: float = 10.0) -> bool:
        """Wait until the item with this mempool arrival number is in a batch written to disk
        (so a crash of this replica no longer loses it); False on timeout."""
        with trio.move_on_after(timeout):
            while self.durable_arrival < arrival:
                await self._batched.wait()
            return True
        return False

    def expired(self, batch: Batch) -> None:
        """``batch`` expired uncommitted: if it is our own, queue its items again."""
        if batch.author == self._me:
            entries = batch.runs()
            self._mempool.requeue(entries)
            self._rebatching[batch.digest] = {i for entry in entries for i in entry_ids(entry)}

    def rebatching(self) -> frozenset[bytes]:
        """Expired own batches some of whose items are not in a new batch yet (keep their rows)."""
        return frozenset(self._rebatching)

    async def run(self) -> None:
        """The batcher."""
        self._batch_seq = max((b.seq for b in self._batches.own(self._me)), default=0)
        resend_own = True
        while True:
            if resend_own and self._connected_peers():
                # after a restart, peers may lack the batches we made before it
                for batch in self._batches.own(self._me):
                    self._link.broadcast(BatchMsg(batch))
                resend_own = False
            await trio.sleep(self._interval)
            while len(self._mempool) and self._room_for_a_batch():
                await self._cut_batch()
                if self._mempool.tx_count < self._limits.batch_max_txs:
                    break
            self._metrics.mempool_txs.set(self._mempool.tx_count)
            self._metrics.mempool_bytes.set(self._mempool.byte_size)
            self._metrics.pending_batches.set(len(self._batches))

    def _room_for_a_batch(self) -> bool:
        """Back pressure: a full batch more keeps our pending batches within what peers hold per
        author (``batch_pool_author_bytes``). While they are not committed the mempool fills, and
        clients are told to retry (503), instead of every replica holding ever more batches."""
        held = self._batches.pending_bytes(self._me)
        return held == 0 or held + self._limits.batch_max_bytes <= self._batches.author_bytes

    async def _cut_batch(self) -> None:
        taken = self._mempool.take(self._limits.batch_max_txs, self._limits.batch_max_bytes)
        taken_through = self._mempool.taken_through
        entries = self._mempool.without_committed(taken)  # a copy sent elsewhere committed meanwhile
        if entries:
            self._batch_seq += 1
            batch = Batch.of(self._me, self._batch_seq, self._committed_height(), entries)
            await self._persist_batch(batch, taken)
            self._batches.add(batch)
            self._batch_added()
            self._link.broadcast(BatchMsg(batch))
            self._metrics.batches_created.inc()
        else:
            self._rebatched(taken)
        self.durable_arrival = taken_through
        self._batched.set()
        self._batched = trio.Event()

    def _rebatched(self, entries: list[Entry]) -> list[bytes]:
        """The expired own batches all of whose items are now dealt with (taken for a batch, or
        committed meanwhile): no longer waiting to be re-batched."""
        replaced = []
        for digest, waiting in self._rebatching.items():
            for entry in entries:
                waiting.difference_update(entry_ids(entry))
            if not waiting:
                replaced.append(digest)
        for digest in replaced:
            del self._rebatching[digest]
        return replaced

    async def _persist_batch(self, batch: Batch, entries: list[Entry]) -> None:
        """Write an own batch; the rows of expired batches whose last items it carries go in the same
        transaction, so after a crash their items are either still queued by the expired row or in
        this batch, never both (docs/ARCHITECTURE.md, "Batches expire")."""
        replaced = self._rebatched(entries)
        ledger = self._stores.require_ledger()
        await self._stores.ledger_call(ledger.save_batch, batch.digest, batch.author, batch.created_height,
                                       batch.encode(), replaced)
