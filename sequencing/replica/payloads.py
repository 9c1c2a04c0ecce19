"""Block payloads: what this replica proposes as leader and checks as voter, and the batch pool's
arrivals from peers.

A leader builds its payload from the pool (``payload_rules.build_payload``); with nothing to
propose it waits up to ``idle_block_delay`` for a batch first. A voter checks a proposal's payload
(``payload_rules.check_payload``), fetching missing batches in a task of its own and posting
:class:`Recheck` when they arrive. The content assembled either way is cached for the executor."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import trio

from consensus.actions import Action, RequestPayload
from consensus.crypto import Verifier
from consensus.encoding import hash_bytes
from consensus.errors import ConsensusError
from consensus.messages import Block

from ..config import Limits
from ..rollup.batches import Batch, BatchPool
from ..rollup.block_content import BlockContent, BlockPayload
from .batch_fetcher import BatchFetcher
from .events import Post, Propose, Recheck
from .evidence_pool import EvidencePool
from .faults import FaultInjection
from .input_guard import InputGuard
from .metrics import NodeMetrics
from .payload_rules import Ancestry, PayloadRejected, build_payload, check_payload

CONTENT_CACHE_SIZE = 256


class BlockTreeView(Protocol):
    def __contains__(self, block_id: object) -> bool: ...

    def path_from_root(self, block_id: bytes) -> list[Block]: ...


class PayloadCore(Protocol):
    """The consensus core as payloads see it (``consensus.core.Replica`` satisfies it)."""

    @property
    def round(self) -> int: ...

    @property
    def committed(self) -> Block: ...

    @property
    def tree(self) -> BlockTreeView: ...

    def on_payload_ready(self, round: int, payload: bytes, data_root: bytes) -> list[Action]: ...

    def on_payload_verified(self, block_id: bytes, ok: bool, reason: str = "") -> list[Action]: ...


class Payloads:
    def __init__(
        self, *, limits: Limits, idle_block_delay: float, batches: BatchPool, evidence: EvidencePool,
        verifier: Verifier, fetcher: BatchFetcher, guard: InputGuard, metrics: NodeMetrics,
        core: Callable[[], PayloadCore], post: Post, nursery: Callable[[], trio.Nursery],
        faults: FaultInjection | None = None,
    ) -> None:
        self._limits = limits
        self._idle_block_delay = idle_block_delay
        self._batches = batches
        self._evidence = evidence
        self._verifier = verifier
        self._fetcher = fetcher
        self._guard = guard
        self._metrics = metrics
        self._core = core
        self._post = post
        self._nursery = nursery
        self._faults = faults
        self._content_cache: OrderedDict[tuple[int, bytes], BlockContent] = OrderedDict()  # (height, payload hash)
        self._batch_added = trio.Event()  # set when a batch enters the pool (wakes an idle leader)

    # -- leader --------------------------------------------------------------------------------

    def on_request(self, request: RequestPayload) -> list[Action]:
        if self._faults is not None and self._faults.withholds_proposals:
            return []  # fault injection (censor-all): the round times out
        if len(self._batches) or self._evidence or self._idle_block_delay <= 0:
            return self.propose(request)
        self._nursery().start_soon(self._propose_when_busy, request)
        return []

    async def _propose_when_busy(self, request: RequestPayload) -> None:
        """Nothing to propose: wait up to ``idle_block_delay`` for a batch, then propose anyway
        (an idle cluster commits a few empty blocks per second instead of hundreds)."""
        with trio.move_on_after(self._idle_block_delay):
            while not len(self._batches):
                await self._batch_added.wait()
        self._post(Propose(request))

    def propose(self, request: RequestPayload) -> list[Action]:
        payload, content = build_payload(
            height=request.parent.height + 1, round=request.round,
            ancestry=Ancestry.of(request.ancestors), batches=self._batches, evidence=self._evidence,
            limits=self._limits, leave_out=self._faults.leave_out if self._faults is not None else None,
        )
        encoded = payload.encode()
        self.remember_content(encoded, content, request.parent.height + 1)
        return self._core().on_payload_ready(request.round, encoded, content.data_root)

    # -- voter ---------------------------------------------------------------------------------

    async def verify(self, block: Block) -> list[Action]:
        core = self._core()
        if block.id not in core.tree or block.height <= core.committed.height:
            self._metrics.dropped.labels("StalePayload").inc()  # committed or pruned meanwhile
            return []
        try:
            payload = BlockPayload.decode(block.payload)
        except ConsensusError as exc:
            self._metrics.rejected_payloads.inc()
            return core.on_payload_verified(block.id, False, f"undecodable payload: {exc}")
        bodies = [self._batches.get(d) for d in payload.batches]
        if any(b is None for b in bodies):
            self._nursery().start_soon(self._fetch_for_proposal, block, payload)
            return []
        try:
            content = check_payload(
                block, payload, [b for b in bodies if b is not None],
                ancestry=Ancestry.of(core.tree.path_from_root(block.parent_id)),
                batch_committed=lambda d: self._batches.committed_at(d) is not None,
                evidence=self._evidence, verifier=self._verifier, limits=self._limits,
            )
        except PayloadRejected as exc:
            self._metrics.rejected_payloads.inc()
            return core.on_payload_verified(block.id, False, str(exc))
        self.remember_content(block.payload, content, block.height)
        return core.on_payload_verified(block.id, True)

    async def _fetch_for_proposal(self, block: Block, payload: BlockPayload) -> None:
        core = self._core()
        with self._guard.handling("batch_fetch"):
            got = await self._fetcher.get(
                payload.batches, prefer=[block.author],
                give_up=lambda: core.round > block.round,
            )
            if got is None:
                return
            for batch in got:
                if self._batches.committed_at(batch.digest) is None:
                    self._batches.add(batch)
            self._post(Recheck(block))

    # -- content cache (for the executor) ------------------------------------------------------

    def remember_content(self, payload: bytes, content: BlockContent, height: int) -> None:
        """Keep the content assembled from a payload, so the executor need not assemble it again
        (the payload fixes the batches, hence everything in the content). Keyed by height too: the
        same payload (an empty block's, above all) at two heights is two entries."""
        self._content_cache[(height, hash_bytes(payload))] = content
        while len(self._content_cache) > CONTENT_CACHE_SIZE:
            self._content_cache.popitem(last=False)

    def cached_content(self, height: int, payload: bytes) -> BlockContent | None:
        """The executor takes a committed block's content, in height order: what is left at or
        below that height belongs to blocks that lost (a timeout, a fork) and is dropped."""
        content = self._content_cache.pop((height, hash_bytes(payload)), None)
        stale = [key for key in self._content_cache if key[0] <= height]
        for key in stale:
            del self._content_cache[key]
        return content

    # -- batches into the pool -----------------------------------------------------------------

    def batch_added(self) -> None:
        """A batch entered the pool: wake a leader waiting for one."""
        self._batch_added.set()
        self._batch_added = trio.Event()

    def accept_batch(self, batch: Batch, sender: int | None) -> bool:
        """A batch body from a peer (broadcast by its author, or a fetch response)."""
        if sender is not None and batch.author != sender:
            return False
        try:
            batch.validate(self._limits)
        except ValueError:
            return False
        if self._batches.committed_at(batch.digest) is not None:
            self._batches.stash(batch)  # a committed block's batch (executor, catch-up): keep the body
            self._fetcher.arrived(batch)
            return False
        if batch.created_height > self._batches.height + self._limits.batch_ttl_blocks:
            self._metrics.dropped.labels("FutureBatch").inc()  # would never expire; refetched if needed
            return False
        if not self._batches.has_room(batch) and not self._fetcher.awaited(batch.digest):
            self._metrics.dropped.labels("BatchPoolFull").inc()  # a flood; fetched if a proposal names it
            return False
        added = self._batches.add(batch)  # peers' batches stay in memory: after a crash they are refetched
        self._fetcher.arrived(batch)
        if added:
            batch.group_ids()  # hash its transactions now, between rounds, not when a proposal names it
            self.batch_added()
        self._metrics.pending_batches.set(len(self._batches))
        return added
