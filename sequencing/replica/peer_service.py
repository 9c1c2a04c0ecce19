"""Answers the node-level requests peers send (batches, blocks, catch-up, status) and routes the
answers to the parts of the node waiting for them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..rollup.batches import Batch
from ..rollup.block_content import BlockPayload
from ..rollup.transactions import item_txs
from .wire import (
    BatchMsg,
    BatchRequest,
    BatchResponse,
    BlockRequest,
    BlockResponse,
    StatusRequest,
    StatusResponse,
    SyncRequest,
    SyncResponse,
)

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger(__name__)

MAX_BLOCKS_PER_FETCH = 256


class PeerService:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.unexpected = 0

    async def handle(self, sender: int, message: Any) -> None:
        node = self.node
        if isinstance(message, BatchMsg):
            node.accept_batch(message.batch, sender)
        elif isinstance(message, BatchResponse):
            for batch in message.batches:
                node.accept_batch(batch, None)
        elif isinstance(message, BatchRequest):
            await self._answer_batches(sender, message)
        elif isinstance(message, BlockRequest):
            await self._answer_blocks(sender, message)
        elif isinstance(message, BlockResponse):
            node.post("blocks", sender, list(message.blocks))
        elif isinstance(message, SyncRequest):
            await self._answer_sync(sender, message)
        elif isinstance(message, SyncResponse):
            node.catch_up.on_response(sender, message)
        elif isinstance(message, StatusRequest):
            self._answer_status(sender)
        elif isinstance(message, StatusResponse):
            node.catch_up.on_status(sender, message)
        else:
            self.unexpected += 1

    async def _answer_batches(self, sender: int, request: BatchRequest) -> None:
        node = self.node
        found = []
        for digest in request.digests:
            batch = node.batches.get(digest)
            if batch is None:
                batch = await node.load_batch(digest)
            if batch is not None:
                found.append(batch)
        if found:
            node.transport.send(sender, BatchResponse(tuple(found)))

    async def _answer_blocks(self, sender: int, request: BlockRequest) -> None:
        node = self.node
        replica = node.replica
        if replica is None or node.storage is None:
            return
        blocks = replica.chain_to(request.target, request.above_height, MAX_BLOCKS_PER_FETCH)
        next_id = blocks[-1].parent_id if blocks else request.target
        storage = node.storage
        while len(blocks) < MAX_BLOCKS_PER_FETCH:
            block = await node.storage_call(storage.block_by_id, next_id)
            if block is None or block.height <= request.above_height:
                break
            blocks.append(block)
            next_id = block.parent_id
        if blocks:
            node.transport.send(sender, BlockResponse(tuple(blocks)))

    async def _answer_sync(self, sender: int, request: SyncRequest) -> None:
        node = self.node
        storage = node.storage
        if storage is None:
            return
        height = await node.storage_call(storage.committed_height)
        last = min(height, request.from_height + min(request.limit, MAX_BLOCKS_PER_FETCH) - 1)
        if last < request.from_height:
            node.transport.send(sender, SyncResponse((), None, height))
            return
        blocks = await node.storage_call(storage.blocks_between, request.from_height, last)
        if not blocks:
            return
        # blocks and their batch bodies within a byte budget (well under the frame limit)
        budget = node.limits.max_frame_bytes // 2
        batches: list[Batch] = []
        kept = 0
        for block in blocks:
            size = len(block.payload) + 512
            bodies = []
            for digest in BlockPayload.decode(block.payload).batches:
                batch = node.batches.get(digest) or await node.load_batch(digest)
                if batch is not None:
                    bodies.append(batch)
                    size += sum(len(tx.payload) + 16 for item in batch.items for tx in item_txs(item))
            if kept and size > budget:
                break
            budget -= size
            batches.extend(bodies)
            kept += 1
        tail = await node.storage_call(storage.block_at, blocks[kept - 1].height)
        if tail is None:
            return
        node.transport.send(sender, SyncResponse(tuple(blocks[:kept]), tail[1], height, tuple(batches)))

    def _answer_status(self, sender: int) -> None:
        node = self.node
        replica = node.replica
        if replica is None or node.recovering:
            return
        node.transport.send(
            sender, StatusResponse(replica.high_qc, replica.last_tc, replica.committed.height)
        )
