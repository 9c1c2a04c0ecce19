"""Answers the node-level requests peers send (batches, blocks, catch-up, status) and routes the
answers to the parts of the node waiting for them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from consensus.commit_proof import CommitProof
from consensus.messages import Block, QuorumCert, TimeoutCert

from ..rollup.batches import Batch, BatchPool
from ..rollup.block_content import BlockPayload
from .events import BlocksIn
from .wire import (
    BatchMsg,
    BatchRequest,
    BatchResponse,
    BlockRequest,
    BlockResponse,
    PeerLink,
    StatusRequest,
    StatusResponse,
    SyncRequest,
    SyncResponse,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BLOCKS_PER_FETCH = 256


class LedgerReads(Protocol):
    """The ledger database's reads that peers' requests need (blocking: run via ``storage_call``)."""

    def committed_height(self) -> int: ...

    def block_at(self, height: int) -> tuple[Block, CommitProof] | None: ...

    def block_by_id(self, block_id: bytes) -> Block | None: ...

    def blocks_between(self, first: int, last: int) -> list[Block]: ...


class CoreView(Protocol):
    """What peers may ask of the consensus core (``consensus.core.Replica`` satisfies it)."""

    @property
    def high_qc(self) -> QuorumCert: ...

    @property
    def last_tc(self) -> TimeoutCert | None: ...

    @property
    def committed(self) -> Block: ...

    def chain_to(self, target: bytes, above_height: int, limit: int) -> list[Block]: ...


class ServedReplica(Protocol):
    """The replica as the peer service sees it (``Node`` satisfies it)."""

    @property
    def replica(self) -> CoreView | None: ...  # the consensus core, once started

    @property
    def recovering(self) -> bool: ...  # a recovering replica's certificates say nothing yet

    @property
    def storage(self) -> LedgerReads | None: ...

    @property
    def batches(self) -> BatchPool: ...

    async def storage_call(self, fn: Callable[..., T], *args: Any) -> T: ...

    async def load_batch(self, digest: bytes) -> Batch | None: ...

    def accept_batch(self, batch: Batch, sender: int | None) -> bool: ...

    def post(self, event: BlocksIn) -> bool: ...


class StatusListener(Protocol):
    """Where answers to our own sync and status requests go (``CatchUp``)."""

    def on_status(self, sender: int, status: StatusResponse) -> None: ...

    def on_response(self, sender: int, response: SyncResponse) -> None: ...


class PeerService:
    def __init__(self, host: ServedReplica, peers: PeerLink, catch_up: StatusListener,
                 max_frame_bytes: int) -> None:
        self._host = host
        self._peers = peers
        self._catch_up = catch_up
        self._max_frame_bytes = max_frame_bytes
        self.unexpected = 0

    def take(self, sender: int, message: object) -> bool:
        """Handle ``message`` at once if that needs no wait (batches, and the answers to our own
        requests): True if it was taken. The transport's reader calls this through the node, so
        these skip the inbox and a task hop; the requests that read the ledger are :meth:`handle`'s."""
        host = self._host
        if isinstance(message, BatchMsg):
            host.accept_batch(message.batch, sender)
        elif isinstance(message, BatchResponse):
            for batch in message.batches:
                host.accept_batch(batch, None)
        elif isinstance(message, BlockResponse):
            host.post(BlocksIn(sender, message.blocks))
        elif isinstance(message, SyncResponse):
            self._catch_up.on_response(sender, message)
        elif isinstance(message, StatusResponse):
            self._catch_up.on_status(sender, message)
        elif isinstance(message, StatusRequest):
            self._answer_status(sender)
        else:
            return False
        return True

    async def handle(self, sender: int, message: object) -> None:
        if self.take(sender, message):
            return
        if isinstance(message, BatchRequest):
            await self._answer_batches(sender, message)
        elif isinstance(message, BlockRequest):
            await self._answer_blocks(sender, message)
        elif isinstance(message, SyncRequest):
            await self._answer_sync(sender, message)
        else:
            self.unexpected += 1

    async def _answer_batches(self, sender: int, request: BatchRequest) -> None:
        host = self._host
        found = []
        for digest in request.digests:
            batch = host.batches.get(digest)
            if batch is None:
                batch = await host.load_batch(digest)
            if batch is not None:
                found.append(batch)
        if found:
            self._peers.send(sender, BatchResponse(tuple(found)))

    async def _answer_blocks(self, sender: int, request: BlockRequest) -> None:
        host = self._host
        replica = host.replica
        if replica is None or host.storage is None:
            return
        blocks = replica.chain_to(request.target, request.above_height, MAX_BLOCKS_PER_FETCH)
        next_id = blocks[-1].parent_id if blocks else request.target
        storage = host.storage
        while len(blocks) < MAX_BLOCKS_PER_FETCH:
            block = await host.storage_call(storage.block_by_id, next_id)
            if block is None or block.height <= request.above_height:
                break
            blocks.append(block)
            next_id = block.parent_id
        if blocks:
            self._peers.send(sender, BlockResponse(tuple(blocks)))

    async def _answer_sync(self, sender: int, request: SyncRequest) -> None:
        host = self._host
        storage = host.storage
        if storage is None:
            return
        height = await host.storage_call(storage.committed_height)
        last = min(height, request.from_height + min(request.limit, MAX_BLOCKS_PER_FETCH) - 1)
        if last < request.from_height:
            self._peers.send(sender, SyncResponse((), None, height))
            return
        blocks = await host.storage_call(storage.blocks_between, request.from_height, last)
        if not blocks:
            return
        # blocks and their batch bodies within a byte budget (well under the frame limit)
        budget = self._max_frame_bytes // 2
        batches: list[Batch] = []
        kept = 0
        for block in blocks:
            size = len(block.payload) + 512
            bodies = []
            for digest in BlockPayload.decode(block.payload).batches:
                batch = host.batches.get(digest) or await host.load_batch(digest)
                if batch is not None:
                    bodies.append(batch)
                    size += len(batch.body)
            if kept and size > budget:
                break
            budget -= size
            batches.extend(bodies)
            kept += 1
        tail = await host.storage_call(storage.block_at, blocks[kept - 1].height)
        if tail is None:
            return
        self._peers.send(sender, SyncResponse(tuple(blocks[:kept]), tail[1], height, tuple(batches)))

    def _answer_status(self, sender: int) -> None:
        host = self._host
        replica = host.replica
        if replica is None or host.recovering:
            return
        self._peers.send(
            sender, StatusResponse(replica.high_qc, replica.last_tc, replica.committed.height)
        )
