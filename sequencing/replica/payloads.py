"""Block payloads: what this replica proposes as leader and checks as voter, and the batch pool's
arrivals from peers.

A leader builds its payload from the pool (``payload_rules.build_payload``); with nothing to
propose it waits up to ``idle_block_delay`` for a batch first. A voter checks a proposal's payload
(``payload_rules.check_payload``), fetching missing batches in a task of its own and posting
:class:`Recheck` when they arrive. The content assembled either way is cached for the executor.

Both split a block with its window of recently committed transactions (``rollup.tx_window``):
the committed part from the :class:`RecentTxWindow` (fed at commit from this cache, else by the
executor), the uncommitted ancestors' from this cache (assembled here if this replica never
checked one). Until the window is known (the executor has not assembled a committed block yet) a
leader proposes no batches and a voter waits for the executor, then checks again."""

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
from ..rollup.block_content import BlockContent, BlockPayload, assemble
from ..rollup.tx_window import NOTHING_BEFORE, Ancestor, RecentTxWindow, SeenBefore, WindowHole
from .batch_fetcher import BatchFetcher
from .events import Post, Propose, Recheck
from .evidence_pool import EvidencePool
from .faults import FaultInjection
from .input_guard import InputGuard
from .metrics import NodeMetrics
from .payload_rules import Ancestry, PayloadRejected, build_payload, check_payload, empty_payload

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
        window: RecentTxWindow | None = None,
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
        self.window = window if window is not None else RecentTxWindow(
            blocks=limits.batch_ttl_blocks, txs=limits.dedup_window_txs)
        self._window_moved = trio.Event()  # set when the executor brings a committed block's ids

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
        height = request.parent.height + 1
        ancestry = Ancestry.of(request.ancestors)
        before = self._window_for(height, request.ancestors)
        if before is None:  # the window is not known yet: propose no batches (evidence only)
            self._metrics.window_not_known.labels("propose").inc()
            payload, content = empty_payload(round=request.round, ancestry=ancestry, evidence=self._evidence)
        else:
            payload, content = build_payload(
                height=height, round=request.round, ancestry=ancestry, batches=self._batches,
                evidence=self._evidence, limits=self._limits, before=before,
                leave_out=self._faults.leave_out if self._faults is not None else None,
            )
        encoded = payload.encode()
        self.remember_content(encoded, content, height)
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
        ancestors = core.tree.path_from_root(block.parent_id)
        before = self._window_for(block.height, ancestors) if payload.batches else NOTHING_BEFORE
        if before is None:
            self._metrics.window_not_known.labels("verify").inc()
            self._nursery().start_soon(self._recheck_when_window_known, block, ancestors)
            return []
        try:
            content = check_payload(
                block, payload, [b for b in bodies if b is not None],
                ancestry=Ancestry.of(ancestors),
                batch_committed=lambda d: self._batches.committed_at(d) is not None,
                evidence=self._evidence, verifier=self._verifier, limits=self._limits, before=before,
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
            self._keep_fetched(got)
            self._post(Recheck(block))

    def _keep_fetched(self, batches: list[Batch]) -> None:
        """Fetched batches a block names go into the pool as pending, unless committed or expired
        here (an expired own batch would have its items re-batched: committed twice)."""
        for batch in batches:
            if self._batches.committed_at(batch.digest) is None and not self._batches.expired(batch):
                self._batches.add(batch)

    # -- the window of recently committed transactions ------------------------------------------

    def _window_for(self, height: int, ancestors: list[Block] | tuple[Block, ...]) -> SeenBefore | None:
        """What a block at ``height`` above ``ancestors`` (its uncommitted ancestors, oldest first)
        skips; None while a committed block's or an ancestor's transactions are not known."""
        known: list[Ancestor] = []
        for block in ancestors:
            content = self._peek(block.height, block.payload) or self._assemble_ancestor(block, known)
            if content is None:
                return None
            known.append(Ancestor(content.tx_ids, content.id_set if content.id_set is not None
                                  else set(content.ids())))
        try:
            return self.window.before(height, known)
        except WindowHole:
            return None

    def _assemble_ancestor(self, block: Block, below: list[Ancestor]) -> BlockContent | None:
        """An uncommitted ancestor this replica did not check (it came late or was fetched; a
        quorum certified it): its content from the batches here, or None if some are missing."""
        try:
            payload = BlockPayload.decode(block.payload)
        except ConsensusError:
            return None
        bodies = [self._batches.get(d) for d in payload.batches]
        if any(b is None for b in bodies):
            return None
        try:
            before = self.window.before(block.height, below) if payload.batches else NOTHING_BEFORE
        except WindowHole:
            return None
        content = assemble([b for b in bodies if b is not None], before)
        if content.data_root != block.data_root:
            return None  # cannot happen for a certified block; then nothing is known of it
        self.remember_content(block.payload, content, block.height)
        return content

    def committed(self, block: Block) -> None:
        """The core committed ``block`` (in height order): its ids enter the window if its content
        is here (else the executor brings them)."""
        content = self._peek(block.height, block.payload)
        if content is not None:
            self.window.committed(block.height, content.tx_ids, content.id_set)

    def executed(self, height: int, content: BlockContent) -> None:
        """The executor took committed height ``height``'s content; wake voters waiting for it."""
        self.window.executed(height, content.tx_ids, content.id_set)
        self._window_moved.set()
        self._window_moved = trio.Event()

    def window_before(self, height: int) -> SeenBefore:
        """For the executor, in height order (every lower committed height is known)."""
        return self.window.before(height)

    async def _recheck_when_window_known(self, block: Block, ancestors: list[Block]) -> None:
        """Fetch the batches of ancestors this replica cannot assemble, or wait for the executor to
        bring the committed blocks the window reaches; then check ``block`` again (until its round
        is over)."""
        core = self._core()
        with self._guard.handling("batch_fetch"):
            missing = [d for a in ancestors if self._peek(a.height, a.payload) is None
                       for d in _batch_digests(a) if self._batches.get(d) is None]
            if missing:
                got = await self._fetcher.get(missing, prefer=[a.author for a in ancestors],
                                              give_up=lambda: core.round > block.round)
                if got is None:
                    return
                self._keep_fetched(got)
            while core.round <= block.round and block.id in core.tree:
                if self._window_for(block.height, core.tree.path_from_root(block.parent_id)) is not None:
                    self._post(Recheck(block))
                    return
                await self._window_moved.wait()

    # -- content cache (for the executor) ------------------------------------------------------

    def _peek(self, height: int, payload: bytes) -> BlockContent | None:
        return self._content_cache.get((height, hash_bytes(payload)))

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
        if self._batches.expired(batch):
            # expired here: no block may include it any more. A fetch for a committed block (the
            # executor behind a catch-up, past the heights whose committed digests the pool still
            # remembers) gets it; the pool must not take it as pending, or it would expire again
            # and, being our own, have its items re-batched: committed twice
            if self._fetcher.awaited(batch.digest):
                self._batches.stash(batch)  # where the fetch finds it
            self._fetcher.arrived(batch)
            self._metrics.dropped.labels("ExpiredBatch").inc()
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


def _batch_digests(block: Block) -> tuple[bytes, ...]:
    try:
        return BlockPayload.decode(block.payload).batches
    except ConsensusError:
        return ()
