"""Client intake (sequencing/replica/intake.py) driven without a Node: fakes for the ledger and the
link, a real mempool and batch pool."""

from __future__ import annotations

import trio
import trio.testing
from room_fakes import FakeLedger, FakeLink, inline_stores, sample

from sequencing.config import Limits
from sequencing.replica.intake import ClientIntake
from sequencing.replica.mempool import Mempool
from sequencing.replica.metrics import NodeMetrics
from sequencing.replica.wire import BatchMsg
from sequencing.rollup.batches import Batch, BatchPool
from sequencing.rollup.transactions import Run, Transaction

ME = 0
INTERVAL = 0.05


class Intake:
    def __init__(self, peers: set[int] | None = None, pool: BatchPool | None = None,
                 limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.mempool = Mempool(self.limits)
        self.pool = pool if pool is not None else BatchPool(self.limits.batch_ttl_blocks)
        self.ledger = FakeLedger()
        self.link = FakeLink(peers)
        self.metrics = NodeMetrics(ME)
        self.added = 0
        self.height = 7
        self.intake = ClientIntake(
            me=ME, limits=self.limits, interval=INTERVAL, mempool=self.mempool, batches=self.pool,
            stores=inline_stores(self.ledger), metrics=self.metrics, link=self.link,
            connected_peers=self.link.connected_peers, committed_height=lambda: self.height,
            batch_added=self.note_added,
        )

    def note_added(self) -> None:
        self.added += 1

    def saved(self) -> list[Batch]:
        return [Batch.decode(args[3], 1 << 20) for args in self.ledger.named("save_batch")]


def tx(n: int) -> Transaction:
    return Transaction(1, f"tx-{n}".encode())


async def test_submit_queues_once_and_remembers_each_transactions_arrival(
        autojump_clock: trio.testing.MockClock) -> None:
    rig = Intake()
    assert rig.intake.submit(tx(1)) is True
    assert rig.intake.submit(tx(1)) is False  # a duplicate
    assert rig.intake.is_pending(tx(1).id) and not rig.intake.is_pending(tx(2).id)
    assert list(rig.intake.submitted_at) == [tx(1).id]
    assert sample(rig.metrics.submissions, ("accepted",)) == 1
    assert sample(rig.metrics.submissions, ("duplicate",)) == 1


async def test_arrival_times_stay_bounded_and_keep_the_newest(autojump_clock: trio.testing.MockClock) -> None:
    """A transaction that never commits (a skipped bundle's) leaves its arrival time behind; the
    table is bounded at twice the mempool, dropping the oldest, and keeps recording new arrivals
    (it used to stop recording at the bound, so the commit-latency metric went blind for good)."""
    rig = Intake(limits=Limits(mempool_max_txs=50))
    cap = 2 * rig.limits.mempool_max_txs
    for n in range(cap + 10):
        assert rig.intake.submit(tx(n))
        if len(rig.mempool) >= 10:
            rig.mempool.take(10, 1 << 30)
    assert len(rig.intake.submitted_at) <= cap
    assert tx(cap + 9).id in rig.intake.submitted_at, "new arrivals are still recorded"
    assert tx(0).id not in rig.intake.submitted_at, "the oldest went first"


async def test_an_item_is_durable_only_once_its_batch_is_written_then_it_goes_to_peers(
        autojump_clock: trio.testing.MockClock) -> None:
    """Catches: durable_arrival (or the wake-up) advanced before the batch write returns, or the
    batch broadcast before it is on disk."""
    rig = Intake()
    rig.ledger.gate = trio.Event()
    rig.intake.submit(tx(1))
    arrival = rig.mempool.arrivals
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.intake.run)
        assert await rig.intake.wait_durable(arrival, timeout=1.0) is False  # the write is held
        assert not [m for m in rig.link.broadcasts if isinstance(m, BatchMsg)]
        rig.ledger.gate.set()
        assert await rig.intake.wait_durable(arrival, timeout=1.0) is True
        (batch,) = rig.saved()
        assert batch.items() == (tx(1),) and batch.author == ME and batch.seq == 1 and batch.created_height == 7
        assert rig.link.broadcasts[-1] == BatchMsg(batch)
        assert rig.pool.get(batch.digest) == batch and rig.added == 1
        assert sample(rig.metrics.batches_created) == 1
        nursery.cancel_scope.cancel()


async def test_an_expired_own_batch_is_batched_again_and_its_row_replaced_in_the_same_write(
        autojump_clock: trio.testing.MockClock) -> None:
    """Catches: a peer's expired batch re-queued, or the expired row not named in the write of the
    batch that takes its last items (a restart would then queue them twice)."""
    rig = Intake()
    own = Batch.of(ME, 1, 0, (tx(1), tx(2)))
    peers = Batch.of(2, 1, 0, (tx(3),))
    rig.intake.expired(peers)
    rig.intake.expired(own)
    assert rig.intake.rebatching() == frozenset({own.digest})
    assert rig.mempool.tx_count == 2, "only the own batch's items are queued again"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.intake.run)
        with trio.fail_after(1.0):  # requeued items keep no arrival number: watch the writes
            while not rig.ledger.named("save_batch"):
                await trio.sleep(INTERVAL)
        nursery.cancel_scope.cancel()
    (args,) = rig.ledger.named("save_batch")
    assert Batch.decode(args[3], 1 << 20).items() == own.items()
    assert args[4] == [own.digest]
    assert rig.intake.rebatching() == frozenset()


async def test_after_a_restart_own_batches_go_to_peers_again_and_numbering_continues(
        autojump_clock: trio.testing.MockClock) -> None:
    pool = BatchPool(Limits().batch_ttl_blocks)
    stored = Batch.of(ME, 4, 0, (tx(9),))
    pool.add(stored)
    pool.add(Batch.of(1, 8, 0, (tx(8),)))  # a peer's: not ours to resend
    rig = Intake(peers=set(), pool=pool)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.intake.run)
        await trio.sleep(3 * INTERVAL)
        assert rig.link.broadcasts == [], "nobody connected yet: nothing sent"
        rig.link.peers.add(1)
        rig.intake.submit(tx(1))
        assert await rig.intake.wait_durable(rig.mempool.arrivals, timeout=1.0)
        with trio.fail_after(1.0):
            while BatchMsg(stored) not in rig.link.broadcasts:
                await trio.sleep(INTERVAL)
        await trio.sleep(3 * INTERVAL)
        assert rig.link.broadcasts.count(BatchMsg(stored)) == 1, "resent once, not every interval"
        nursery.cancel_scope.cancel()
    assert [m.batch.author for m in rig.link.broadcasts if isinstance(m, BatchMsg)].count(1) == 0
    assert [b.seq for b in rig.saved()] == [5]


async def test_submit_many_reports_each_item_and_counts_once(autojump_clock: trio.testing.MockClock) -> None:
    """Catches: a refused item failing the whole list, a duplicate counted as accepted, arrivals of
    refused items kept for the latency metric, or a full mempool letting later items in."""
    rig = Intake()
    rig.limits = Limits(mempool_max_txs=3)
    rig.mempool.limits = rig.limits
    rig.intake.submit(tx(1))
    bad = Transaction(1, b"")
    result = rig.intake.submit_many([tx(2), tx(1), bad, tx(3), tx(4), tx(5)])
    assert result.outcomes[:2] == [True, False]
    assert isinstance(result.outcomes[2], str) and "empty" in result.outcomes[2]
    assert result.outcomes[3] is True
    assert all(isinstance(o, str) and "full" in o for o in result.outcomes[4:]), result.outcomes
    assert result.busy and result.accepted == 2
    assert set(rig.intake.submitted_at) == {tx(1).id, tx(2).id}  # one timed sample per call
    assert sample(rig.metrics.submissions, ("accepted",)) == 3
    assert sample(rig.metrics.submissions, ("duplicate",)) == 1
    assert sample(rig.metrics.mempool_txs) == 3


async def test_submit_runs_reports_each_transaction_and_counts_once(autojump_clock: trio.testing.MockClock) -> None:
    """The binary path's runs: per transaction True / False (a duplicate, also within the call) or
    the full mempool's reason for it and every later one; one timed sample; and a batch keeps the
    runs' ids (catches: a duplicate queued twice, a refused run's arrival timed, outcomes cut short)."""
    rig = Intake()
    rig.limits = Limits(mempool_max_txs=4)
    rig.mempool.limits = rig.limits
    rig.intake.submit(tx(1))
    runs = [Run.of(1, [tx(2).payload, tx(1).payload, tx(2).payload]),
            Run.of(2, [b"x", b"y", b"z"]), Run.of(3, [b"late"])]
    result = rig.intake.submit_runs(runs)
    assert result.outcomes[:5] == [True, False, False, True, True]
    assert all(isinstance(o, str) and "full" in o for o in result.outcomes[5:]) and len(result.outcomes) == 7
    assert result.busy and result.accepted == 3
    assert set(rig.intake.submitted_at) == {tx(1).id, tx(2).id}
    assert sample(rig.metrics.submissions, ("accepted",)) == 4
    assert sample(rig.metrics.submissions, ("duplicate",)) == 2
    (batch_items) = Batch.of(ME, 1, 0, rig.mempool.take(10, 1 << 20)).items()
    assert batch_items == (tx(1), tx(2), Transaction(2, b"x"), Transaction(2, b"y"))


async def test_the_batcher_waits_while_its_own_pending_batches_fill_their_share(
        autojump_clock: trio.testing.MockClock) -> None:
    """Back pressure: no new batch while our uncommitted batches would pass batch_pool_author_bytes
    (what every replica holds of one author); the items wait in the mempool (clients then see 503
    when it fills) and go out once a commit frees room (catches: batches cut whatever is pending)."""
    limits = Limits(batch_max_txs=1, batch_max_bytes=100)
    one = len(Batch.of(ME, 1, 7, (tx(0),)).body)  # every batch here is one transaction of this size
    pool = BatchPool(limits.batch_ttl_blocks, author_bytes=2 * one + limits.batch_max_bytes - 1)
    rig = Intake(pool=pool, limits=limits)
    for n in range(6):
        rig.intake.submit(tx(n))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.intake.run)
        await trio.sleep(20 * INTERVAL)
        cut = rig.saved()
        assert len(cut) == 2 and pool.pending_bytes(ME) == 2 * one
        assert rig.mempool.tx_count == 4, "the rest waits in the mempool"
        pool.mark_committed([b.digest for b in cut], 1)
        await trio.sleep(20 * INTERVAL)
        assert len(rig.saved()) == 4 and rig.mempool.tx_count == 2, "a commit freed room for two more"
        nursery.cancel_scope.cancel()
