"""Commits (sequencing/replica/commits.py) driven without a Node: a fake ledger and safety store,
records that carry only what ``on_written`` reads, a real batch pool and evidence pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
import trio
import trio.testing
from node_rig import World
from room_fakes import FakeLedger, inline_stores

from consensus.actions import Commit
from consensus.messages import Block
from sequencing.config import Limits
from sequencing.replica.commits import BATCH_PRUNE_EVERY, VOTED_PRUNE_EVERY, Commits
from sequencing.replica.evidence_pool import EvidencePool
from sequencing.replica.executor import Committed
from sequencing.replica.metrics import NodeMetrics
from sequencing.rollup.batches import Batch, BatchPool
from sequencing.rollup.block_content import BlockPayload
from sequencing.rollup.transactions import Transaction

TTL = 10
WORLD = World.make(4)
WAITING = frozenset({b"w" * 32})


@dataclass(frozen=True)
class Record:
    """What on_written reads of a CommitRecord."""

    block: Block
    tx_ids: bytes

    @property
    def tx_count(self) -> int:
        return len(self.tx_ids) // 32


class Rig:
    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.limits = Limits(batch_ttl_blocks=TTL)
        self.pool = BatchPool(TTL)
        self.ledger, self.safety = FakeLedger(), FakeLedger()
        self.metrics = NodeMetrics(0)
        self.expired: list[Batch] = []
        self.submitted_at: dict[bytes, float] = {}
        self.commits = Commits(
            batch_ttl_blocks=TTL, max_frame_bytes=1 << 20, batches=self.pool, evidence=EvidencePool(self.limits),
            stores=inline_stores(self.ledger, self.safety), metrics=self.metrics, fetcher=None,  # type: ignore[arg-type]
            cached=lambda height, payload: None, expired=self.expired.append, rebatching=lambda: WAITING,
            submitted_at=self.submitted_at, nursery=lambda: nursery,
        )

    def value(self, name: str) -> float:
        got = self.metrics.registry.get_sample_value(name)
        return 0.0 if got is None else got


def block(height: int, batches: tuple[Batch, ...] = ()) -> Block:
    payload = BlockPayload(tuple(b.digest for b in batches), ()).encode()
    return Block(height, height, WORLD.genesis_qc, 1, payload, b"r" * 32)


def batch(author: int, seq: int, created: int = 0) -> Batch:
    return Batch.of(author, seq, created, (Transaction(1, f"tx-{author}-{seq}".encode()),))


@asynccontextmanager
async def rig() -> AsyncIterator[Rig]:
    async with trio.open_nursery() as nursery:
        yield Rig(nursery)
        nursery.cancel_scope.cancel()


async def test_a_commit_marks_its_batches_expires_old_ones_and_goes_to_the_executor() -> None:
    """Catches: the block's batches not marked committed (they would be proposed again), expired
    batches not handed back to intake, or the block not reaching the executor."""
    async with rig() as r:
        named, old = batch(2, 1, created=TTL + 5), batch(0, 1, created=0)
        r.pool.add(named)
        r.pool.add(old)
        committed = block(TTL + 6, (named,))
        await r.commits.on_commit(Commit(committed, "proof"))  # type: ignore[arg-type]
        assert r.pool.committed_at(named.digest) == TTL + 6
        assert r.expired == [old]
        # with the batch the pool held, so the executor needs no fetch nor decode
        assert r.commits.executor._receive.receive_nowait() == Committed(committed, "proof", (named,))  # type: ignore[arg-type]


async def test_a_commit_reaches_the_executor_without_yielding_while_it_has_room() -> None:
    """The commit is on the next leader's way to its proposal (the QC that commits also lets it
    propose): a yield there waits one pass of every other runnable task. Catches: an awaited
    channel send (it yields even with room), in one of 20 tries at least (trio runs a batch of
    runnable tasks in either order, so a yield lets the other task in first half the time)."""
    async with rig() as r:
        for height in range(1, 21):
            ran: list[str] = []

            async def other(ran: list[str] = ran) -> None:
                ran.append("other task")

            r.nursery.start_soon(other)
            await r.commits.on_commit(Commit(block(height), "proof"))  # type: ignore[arg-type]
            ran.append("committed")
            await trio.testing.wait_all_tasks_blocked()
            assert ran == ["committed", "other task"]


async def test_a_commit_waits_for_room_when_the_executor_is_behind() -> None:
    async with rig() as r:
        channel = r.commits.executor.send
        while True:  # fill the executor's channel (nobody reads it here)
            try:
                channel.send_nowait(Committed(block(1), "proof", ()))  # type: ignore[arg-type]
            except trio.WouldBlock:
                break
        done = trio.Event()

        async def commit() -> None:
            await r.commits.on_commit(Commit(block(2), "proof"))  # type: ignore[arg-type]
            done.set()

        r.nursery.start_soon(commit)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()  # held, not dropped
        r.commits.executor._receive.receive_nowait()
        await done.wait()


async def test_a_commit_whose_batches_the_pool_lacks_leaves_the_fetch_to_the_executor() -> None:
    async with rig() as r:
        held, missing = batch(2, 1, created=TTL + 5), batch(3, 1, created=TTL + 5)
        r.pool.add(held)
        committed = block(TTL + 6, (held, missing))
        await r.commits.on_commit(Commit(committed, "proof"))  # type: ignore[arg-type]
        assert r.commits.executor._receive.receive_nowait() == Committed(committed, "proof")  # type: ignore[arg-type]


async def test_a_durable_write_advances_the_height_wakes_waiters_and_times_both_latencies(
        autojump_clock: trio.testing.MockClock) -> None:
    async with rig() as r:
        b = block(1)
        r.submitted_at[b"t1".ljust(32)] = trio.current_time()
        r.commits.note_proposal(WORLD.proposal(b))
        changed = r.commits.committed_changed
        await trio.sleep(2)
        r.commits.on_written([Record(b, b"t1".ljust(32) + b"t2".ljust(32))])  # type: ignore[list-item]
        assert changed.is_set() and not r.commits.committed_changed.is_set()
        assert (r.commits.durable_height, r.commits.durable_block_id, r.commits.txs_committed) == (1, b.id, 2)
        assert r.submitted_at == {}
        assert r.value("ordo_commit_latency_seconds_count") == 1
        assert r.value("ordo_commit_latency_seconds_sum") == 2
        assert r.value("ordo_block_commit_latency_seconds_sum") == 2
        assert r.value("ordo_committed_height") == 1 and r.value("ordo_txs_committed_total") == 2


async def test_pruning_runs_when_a_write_crosses_its_period_keeping_batches_still_rebatching() -> None:
    """Catches: a prune period crossed inside a group of blocks missed, a wrong cut-off height, or
    rows of batches whose items still wait to be re-batched deleted."""
    async with rig() as r:
        r.commits.on_written([Record(block(BATCH_PRUNE_EVERY - 1), b"")])  # type: ignore[list-item]
        await trio.testing.wait_all_tasks_blocked()
        assert r.ledger.named("prune_batches") == [] and r.safety.named("prune_voted") == []
        group = [Record(block(h), b"") for h in (BATCH_PRUNE_EVERY, BATCH_PRUNE_EVERY + 1)]
        r.commits.on_written(group)  # type: ignore[arg-type]
        await trio.testing.wait_all_tasks_blocked()
        assert r.ledger.named("prune_batches") == [(BATCH_PRUNE_EVERY + 1 - 2 * TTL, WAITING)]
        r.commits.on_written([Record(block(h), b"") for h in range(VOTED_PRUNE_EVERY - 1, VOTED_PRUNE_EVERY + 2)])  # type: ignore[misc]
        await trio.testing.wait_all_tasks_blocked()
        assert r.safety.named("prune_voted") == [(VOTED_PRUNE_EVERY + 1,)]


async def test_resume_restores_the_durable_height_and_the_pools_from_the_ledger() -> None:
    async with rig() as r:
        own = batch(0, 3, created=20)
        r.ledger.pending = [(own.digest, 0, 20, own.encode()), (b"x" * 32, 0, 20, b"garbage")]
        r.ledger.txs = 7
        root = block(30)
        await r.commits.resume(root)
        assert (r.commits.durable_height, r.commits.durable_block_id, r.commits.txs_committed) == (30, root.id, 7)
        assert r.pool.own(0) == [own], "the unreadable row is skipped"
        assert r.ledger.named("committed_batches_since") == [(30 - 2 * TTL,)]
        assert r.value("ordo_committed_height") == 30


@pytest.mark.parametrize("waiting", [3, 500])
async def test_timed_arrivals_are_found_in_a_block_whether_few_or_many_wait(
        waiting: int, autojump_clock: trio.testing.MockClock) -> None:
    """Both lookups (a search of the ids blob per sample, or a lookup per id): a sample in the
    block is observed and removed, one at an unaligned offset or not in the block stays."""
    async with rig() as r:
        ids = [bytes([i % 256, i // 256]).ljust(32, b"\x07") for i in range(1000)]
        for tx_id in ids[:waiting]:
            r.submitted_at[tx_id] = trio.current_time()
        blob = b"".join(ids[1:200])  # ids[0] is not in the block
        straddling = blob[16:48]  # the halves of two ids: in the blob, not an id of it
        r.submitted_at[straddling] = trio.current_time()
        await trio.sleep(1)
        r.commits.on_written([Record(block(1), blob)])  # type: ignore[list-item]
        found = min(waiting, 200) - 1
        assert r.value("ordo_commit_latency_seconds_count") == found
        assert ids[0] in r.submitted_at and straddling in r.submitted_at
        assert not any(tx_id in r.submitted_at for tx_id in ids[1:200])
