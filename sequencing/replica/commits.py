"""Commits: what a ``Commit`` action changes in memory, handing the block to the executor, and
what follows its durable write (durable height, metrics and latencies, periodic pruning).

On commit the pool marks the block's batches and evidence committed and expires old batches (an
own expired batch goes back to intake); the block goes to the executor's bounded channel (the
executor is made and owned here). Once it wrote records, :meth:`on_written` advances
``durable_height``, observes the submission -> commit latency of own clients' transactions and
the proposal -> commit latency of own blocks, and every so often prunes voted blocks (safety
store) and expired own batch rows (ledger)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from consensus.actions import Commit
from consensus.encoding import DIGEST_SIZE
from consensus.errors import ConsensusError
from consensus.messages import Block, Proposal

from ..rollup.batches import Batch, BatchPool
from ..rollup.block_content import BlockContent, BlockPayload
from ..rollup.tx_window import RecentTxWindow
from ..storage import CommitRecord
from ..storage.txindex import find_aligned
from .batch_fetcher import BatchFetcher
from .evidence_pool import EvidencePool
from .executor import Committed, Executor
from .metrics import NodeMetrics
from .stores import Stores
from .watch import ClusterWatch

log = logging.getLogger(__name__)

BATCH_PRUNE_EVERY = 64  # blocks between deletions of expired batch rows (docs/ARCHITECTURE.md)
VOTED_PRUNE_EVERY = 100  # blocks between deletions of voted blocks at or below the durable height
MAX_PROPOSED_TRACKED = 10_000


class Commits:
    def __init__(
        self, *, batch_ttl_blocks: int, max_frame_bytes: int, batches: BatchPool, evidence: EvidencePool,
        stores: Stores, metrics: NodeMetrics, fetcher: BatchFetcher,
        cached: Callable[[int, bytes], BlockContent | None],
        expired: Callable[[Batch], None], rebatching: Callable[[], frozenset[bytes]],
        submitted_at: dict[bytes, float], nursery: Callable[[], trio.Nursery],
        window: RecentTxWindow | None = None,
        noted: Callable[[Block], None] = lambda block: None,
        executed: Callable[[int, BlockContent], None] = lambda height, content: None,
        watch: ClusterWatch | None = None,
    ) -> None:
        self._ttl = batch_ttl_blocks
        self._max_frame_bytes = max_frame_bytes
        self._batches = batches
        self._evidence = evidence
        self._stores = stores
        self._metrics = metrics
        self.executor = Executor(fetcher, self.write, self.on_written, cached,
                                 assembled_again=metrics.assembled_again.inc, window=window, executed=executed,
                                 skipped=metrics.duplicates_skipped.inc)
        self._window = window
        self._noted = noted  # the core committed a block: its ids join the window if its content is known
        self._expired = expired
        self._rebatching = rebatching
        self._submitted_at = submitted_at  # shared with intake, which fills it
        self._proposed_at: dict[bytes, float] = {}
        self._nursery = nursery
        self._watch = watch  # the dashboard's blocks, throughput and latency samples (O(1) per block)
        self.durable_height = 0
        self.durable_block_id: bytes | None = None
        self.txs_committed = 0
        self.committed_changed = trio.Event()

    async def resume(self, root: Block | None) -> None:
        """At start-up, from the ledger (whose last block is ``root``): the durable height, the own
        batches and evidence not committed yet back into the pools, the recently committed batches."""
        stores, ledger = self._stores, self._stores.require_ledger()
        self.durable_height = height = 0 if root is None else root.height
        self.durable_block_id = None if root is None else root.id
        self.txs_committed = await stores.ledger_call(ledger.txs_committed)
        self._metrics.committed_height.set(height)
        self._batches.mark_committed((), height)  # the pool's height: a peer's batch beyond it + ttl is refused
        for digest, _author, _created, body in await stores.ledger_call(ledger.pending_batches):
            try:
                self._batches.add(Batch.decode(body, self._max_frame_bytes))
            except ConsensusError:
                log.warning("replica %d: stored batch %s unreadable, skipped", self._metrics.replica_id,
                            digest.hex()[:12])
        for evidence, committed in await stores.ledger_call(ledger.evidence_list):
            if committed is None:
                self._evidence.add(evidence)
            else:
                self._evidence.mark_committed([evidence])
        horizon = max(0, height - 2 * self._ttl)
        self._batches.remember_committed(await stores.ledger_call(ledger.committed_batches_since, horizon))
        if self._window is not None:  # the ids of the heights a window above the ledger's tip reaches
            rows = await stores.ledger_call(ledger.tx_ids_between, height + 1 - self._window.blocks, height)
            self._window.start(height, rows)

    def note_proposal(self, proposal: Proposal) -> None:
        self._proposed_at[proposal.block.id] = trio.current_time()

    async def on_commit(self, commit: Commit) -> None:
        block = commit.block
        try:
            payload = BlockPayload.decode(block.payload)
        except ConsensusError:
            payload = BlockPayload((), ())
        held = [self._batches.get(d) for d in payload.batches]  # before they leave the pending pool
        batches = None if None in held else tuple(b for b in held if b is not None)
        self._batches.mark_committed(payload.batches, block.height)
        self._evidence.mark_committed(payload.evidence)
        self._noted(block)
        for batch in self._batches.expire(block.height):
            self._expired(batch)
        committed = Committed(block, commit.proof, batches)
        try:  # no yield while the executor keeps up: the commit is on the next leader's critical path
            self.executor.send.send_nowait(committed)
        except trio.WouldBlock:
            await self.executor.send.send(committed)  # the executor is behind: wait for room

    async def write(self, records: list[CommitRecord]) -> None:
        ledger = self._stores.require_ledger()
        if len(records) == 1:
            await self._stores.ledger_call(ledger.append, records[0])
        else:
            await self._stores.ledger_call(ledger.append_many, records)

    def on_written(self, records: list[CommitRecord]) -> None:
        now = trio.current_time()
        watch = self._watch
        for record in records:
            self._metrics.blocks_committed.inc()
            self._metrics.txs_committed.inc(record.tx_count)
            for tx_id in self._timed_in(record.tx_ids):
                latency = now - self._submitted_at.pop(tx_id)
                self._metrics.commit_latency.observe(latency)
                if watch is not None:
                    watch.latency(latency, now)
            if watch is not None:
                watch.committed(record.block, record.tx_count, sum(map(len, record.batch_bodies)), record.slices, now)
            proposed = self._proposed_at.pop(record.block.id, None)
            if proposed is not None:
                self._metrics.block_latency.observe(now - proposed)
        self.durable_height = height = records[-1].block.height
        self.durable_block_id = records[-1].block.id
        self._prune(height, len(records))
        self.txs_committed += sum(r.tx_count for r in records)
        self._metrics.committed_height.set(height)
        self._metrics.pending_batches.set(len(self._batches))
        if len(self._proposed_at) > MAX_PROPOSED_TRACKED:
            self._proposed_at.clear()
        self.committed_changed.set()
        self.committed_changed = trio.Event()

    def _timed_in(self, tx_ids: bytes) -> list[bytes]:
        """The timed arrivals (intake samples one transaction per client call) among a block's
        ids: a C-level search of the ids blob per sample while samples are few, else a lookup
        per id."""
        timed = self._submitted_at
        if not timed:
            return []
        if len(timed) * 64 <= len(tx_ids) // DIGEST_SIZE or len(timed) <= 64:
            return [t for t in timed if find_aligned(tx_ids, t, DIGEST_SIZE) >= 0]
        ids = (tx_ids[at:at + DIGEST_SIZE] for at in range(0, len(tx_ids), DIGEST_SIZE))
        return [t for t in ids if t in timed]

    def _prune(self, height: int, written: int) -> None:
        """Every VOTED_PRUNE_EVERY / BATCH_PRUNE_EVERY blocks (``written`` blocks just reached
        ``height``), delete voted blocks and expired own batch rows, in tasks of their own."""
        stores = self._stores
        if height % VOTED_PRUNE_EVERY < written:
            self._nursery().start_soon(stores.safety_call, stores.require_safety().prune_voted, height)
        expired_below = height - 2 * self._ttl  # own batches' rows
        if height % BATCH_PRUNE_EVERY < written and expired_below > 0:
            self._nursery().start_soon(stores.ledger_call, stores.require_ledger().prune_batches, expired_below,
                                       self._rebatching())  # their items are not in a batch yet
