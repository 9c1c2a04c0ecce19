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

from ..rollup.batches import Batch
from ..rollup.block_content import BlockContent, BlockPayload, assemble
from ..rollup.block_tree import BlockTree
from ..rollup.bounded_cache import BoundedCache
from ..rollup.tx_window import NOTHING_BEFORE, RecentTxWindow
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
    # The block's batches, in payload order, when the pool held them all as it committed; else
    # None and the executor fetches them (a committed body is kept as bytes: decoding it again
    # cost ~3 % of a replica's event-loop time at max load).
    batches: tuple[Batch, ...] | None = None


RecentCommit = tuple[Block, CommitProof, BlockTree]
RECENT_COMMITS = 32  # heights
RECENT_COMMIT_BYTES = 16 * 1024 * 1024  # batch bytes the trees may pin (a subscriber further behind: the ledger)


class RecentCommits(BoundedCache[int, RecentCommit]):
    """The newest durable commits with the tree their content was assembled with, by height: the
    API serves slice proofs and subscriptions from here (no ledger read, no tree rebuilt), and
    older heights from the ledger. Filled only after the write, so it never holds a height that
    is not durable. At most ``size`` heights and ``max_bytes`` (the bodies of the blocks' batches,
    which hold every payload: counted per batch, not per transaction; the newest is kept whatever
    its size)."""

    def __init__(self, size: int = RECENT_COMMITS, max_bytes: int = RECENT_COMMIT_BYTES) -> None:
        super().__init__(size, max_bytes)


class Executor:
    def __init__(
        self,
        fetcher: BatchFetcher,
        write: Callable[[list[CommitRecord]], Awaitable[None]],
        on_written: Callable[[list[CommitRecord]], None],
        cached: Callable[[int, bytes], BlockContent | None] = lambda height, payload: None,
        *,
        assembled_again: Callable[[], None] = lambda: None,
        window: RecentTxWindow | None = None,
        executed: Callable[[int, BlockContent], None] = lambda height, content: None,
        skipped: Callable[[int], None] = lambda count: None,
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
        self.recent = RecentCommits()
        self._assembled_again = assembled_again  # a committed block's content was not in the cache
        self._window = window  # recently committed ids, for a block assembled here (none: no window)
        self._executed = executed  # a committed block's content is known (its ids join the window)
        self._skipped = skipped  # transactions of the block's batches the split skipped (duplicates)

    async def run(self) -> None:
        async with self._receive:
            while True:
                first = await self._receive.receive()
                records: list[CommitRecord] = []
                trees: list[BlockTree] = []
                committed: Committed | None = first
                txs = 0
                # group what is already waiting (catch-up), keeping each transaction bounded
                while committed is not None:
                    record, tree = await self._record(committed)
                    records.append(record)
                    trees.append(tree)
                    txs += record.tx_count
                    committed = None
                    if len(records) < self._max_group and txs < self._max_group_txs:
                        try:
                            committed = self._receive.receive_nowait()
                        except trio.WouldBlock:
                            pass
                await self._write(records)
                for record, tree in zip(records, trees, strict=True):
                    self.recent.put(record.block.height, (record.block, record.proof, tree),
                                    sum(map(len, record.batch_bodies)))
                self._on_written(records)

    async def _record(self, committed: Committed) -> tuple[CommitRecord, BlockTree]:
        block = committed.block
        payload = BlockPayload.decode(block.payload)
        handed = committed.batches
        if handed is not None and [b.digest for b in handed] == list(payload.batches):
            batches: list[Batch] | None = list(handed)
        else:  # none handed over (or not these)
            batches = await self._fetcher.get(payload.batches, prefer=[block.author])
        assert batches is not None  # no give_up: committed batches always exist at f+1 honest
        content = self._cached(block.height, block.payload)
        if content is None:
            self._assembled_again()
            before = self._window.before(block.height) if self._window is not None and batches else NOTHING_BEFORE
            content = assemble(batches, before)
        if content.data_root != block.data_root:
            raise ExecutionError(f"block {block.height} ({block.id.hex()[:12]}): data_root mismatch")
        self._executed(block.height, content)
        skipped = sum(b.tx_count for b in batches) - content.tx_count
        if skipped:
            self._skipped(skipped)
        return CommitRecord(
            block=block,
            proof=committed.proof,
            slices=content.slices,
            tx_ids=content.tx_ids,
            bundles=content.bundles,
            batch_digests=payload.batches,
            evidence=payload.evidence,
            batch_bodies=tuple(b.encode() for b in batches),
        ), content.block_tree()
