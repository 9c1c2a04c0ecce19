"""Turns committed blocks into durable records: fetch batch bodies, split per rollup, write.

Runs as its own task behind a bounded channel so consensus never waits for disk on the commit
path (it does wait, by design, for the safety state). Blocks are written strictly in height
order, several per SQLite transaction when it is behind (catch-up)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from consensus.commit_proof import CommitProof
from consensus.messages import Block

from ..rollup.block_content import BlockContent, BlockPayload, assemble
from ..storage import CommitRecord
from .batch_fetcher import BatchFetcher

log = logging.getLogger(__name__)


class ExecutionError(Exception):
    """A committed block whose transactions do not match its data_root: never expected with at
    most f faulty replicas; the node stops writing rather than store a wrong sub-log."""


@dataclass(frozen=True, slots=True)
class Committed:
    block: Block
    proof: CommitProof


class Executor:
    def __init__(
        self,
        fetcher: BatchFetcher,
        write: Callable[[list[CommitRecord]], Awaitable[None]],
        on_written: Callable[[list[CommitRecord]], None],
        cached: Callable[[bytes], BlockContent | None] = lambda payload: None,
        *,
        max_group: int = 64,
        max_group_txs: int = 8_000,
    ) -> None:
        self._fetcher = fetcher
        self._write = write
        self._on_written = on_written
        self._max_group = max_group
        self._max_group_txs = max_group_txs
        self._cached = cached
        self.send, self._receive = trio.open_memory_channel[Committed](4096)

    async def run(self) -> None:
        async with self._receive:
            while True:
                first = await self._receive.receive()
                records = [await self._record(first)]
                txs = records[0].tx_count
                # group what is already waiting (catch-up), keeping each transaction bounded
                while len(records) < self._max_group and txs < self._max_group_txs:
                    try:
                        committed = self._receive.receive_nowait()
                    except trio.WouldBlock:
                        break
                    records.append(await self._record(committed))
                    txs += records[-1].tx_count
                await self._write(records)
                self._on_written(records)

    async def _record(self, committed: Committed) -> CommitRecord:
        block = committed.block
        payload = BlockPayload.decode(block.payload)
        batches = await self._fetcher.get(payload.batches, prefer=[block.author])
        assert batches is not None  # no give_up: committed batches always exist at f+1 honest
        content = self._cached(block.payload) or assemble(batches)
        if content.data_root != block.data_root:
            raise ExecutionError(f"block {block.height} ({block.id.hex()[:12]}): data_root mismatch")
        return CommitRecord(
            block=block,
            proof=committed.proof,
            slices=content.slices,
            tx_ids=content.tx_ids,
            bundles=content.bundles,
            batch_digests=payload.batches,
            evidence=payload.evidence,
            batch_bodies=tuple(b.encode() for b in batches),
        )
