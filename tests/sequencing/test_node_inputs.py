"""A replica never dies of what a peer sends (issue 8, item 1).

The crash: a proposal whose batch this replica lacks starts a fetch; before the batch arrives the
block (or a sibling) is committed and pruned; the late batch triggers a recheck of the block, and
``path_from_root`` of a parent no longer in the tree raised KeyError out of the core loop. Reached
after a partition heals, and on purpose by a leader that withholds a batch from one victim while
the others vote. Runs a real Node (real core, real storage) on trio's MockClock: time stands
still, so the batch fetch is always still in its first attempt when the batch arrives."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio
from node_rig import NodeRig, node_rig

from consensus.messages import Block
from sequencing.replica.batch_fetcher import BatchFetcher
from sequencing.replica.events import Recheck, TimerFired
from sequencing.replica.wire import BatchMsg, BatchRequest, BatchResponse
from sequencing.rollup.batches import Batch, BatchPool

VICTIM = 0  # leaders of rounds 1, 2, 3 are replicas 1, 2, 3: the victim only follows


def metric(rig: NodeRig, name: str, **labels: str) -> float:
    value = rig.node.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def propose(rig: NodeRig, block: Block, tc: object = None) -> None:
    await rig.deliver(block.author, rig.world.proposal(block, tc))  # type: ignore[arg-type]


async def withheld_block(rig: NodeRig) -> tuple[Block, Batch]:
    """Leader 1 proposes B1 carrying a batch the victim never got: the victim starts fetching."""
    batch = rig.batch(author=1, seq=1)
    b1 = rig.block(1, rig.world.genesis, rig.world.genesis_qc, (batch,))
    await propose(rig, b1)
    assert any(batch.digest in r.digests for r in rig.net.of_type(BatchRequest)), "no fetch started"
    assert rig.replica.round == 1
    return b1, batch


def input_errors(rig: NodeRig) -> float:
    return sum(s.value for m in rig.node.metrics.registry.collect() if m.name == "ordo_input_errors"
               for s in m.samples if s.name.endswith("_total"))


async def assert_alive(rig: NodeRig) -> None:
    """The core loop still takes input: a timeout of the current round makes it send a Timeout."""
    from consensus.messages import Timeout

    before = len(rig.net.of_type(Timeout))
    assert rig.node.post(TimerFired(rig.replica.round))
    await rig.settle()
    assert len(rig.net.of_type(Timeout)) == before + 1, "the core loop no longer processes input"


async def test_late_batch_after_its_block_was_committed(tmp_path: Path, mock_clock: trio.abc.Clock) -> None:
    async with node_rig(tmp_path, VICTIM) as rig:
        w = rig.world
        b1, batch = await withheld_block(rig)
        b2 = rig.block(2, b1, w.qc(b1))
        await propose(rig, b2)
        b3 = rig.block(3, b2, w.qc(b2))
        await propose(rig, b3)
        assert rig.replica.committed.id == b1.id  # committed over the victim's head
        await rig.deliver(1, BatchResponse((batch,)))  # the batch arrives late
        await assert_alive(rig)
        assert rig.replica.committed.id == b1.id
        assert input_errors(rig) == 0  # the cause is fixed, not only caught by the guard


async def test_withheld_batch_and_a_sibling_committed_by_tc(tmp_path: Path, mock_clock: trio.abc.Clock) -> None:
    """The Byzantine leader of round 1 sends its batch to everyone but the victim; round 1 times
    out; the next leaders build on genesis (a sibling of B1), which commits and prunes B1; then the
    leader hands the victim the batch."""
    async with node_rig(tmp_path, VICTIM) as rig:
        w = rig.world
        b1, batch = await withheld_block(rig)
        tc = w.tc(1, {i: w.genesis_qc for i in (1, 2, 3)})
        s2 = rig.block(2, w.genesis, w.genesis_qc)
        await propose(rig, s2, tc)
        s3 = rig.block(3, s2, w.qc(s2))
        await propose(rig, s3)
        for voter in (1, 2, 3):  # the others certify s3, which commits s2
            await rig.deliver(voter, w.vote(voter, 3, s3.id))
        assert rig.replica.committed.id == s2.id
        assert b1.id not in rig.replica.tree
        await rig.deliver(1, BatchMsg(batch))
        await assert_alive(rig)
        assert input_errors(rig) == 0


async def test_recheck_of_a_pruned_block_is_dropped_and_counted(
    tmp_path: Path, mock_clock: trio.abc.Clock
) -> None:
    """The recheck itself (whatever posted it) of a block no longer in the tree is dropped."""
    async with node_rig(tmp_path, VICTIM) as rig:
        w = rig.world
        b1, batch = await withheld_block(rig)
        b2 = rig.block(2, b1, w.qc(b1))
        await propose(rig, b2)
        await propose(rig, rig.block(3, b2, w.qc(b2)))
        rig.node.batches.stash(batch)
        assert rig.node.post(Recheck(b1))
        await rig.settle()
        await assert_alive(rig)
        assert metric(rig, "ordo_dropped_inputs_total", kind="StalePayload") == 1
        assert input_errors(rig) == 0


async def test_an_unexpected_error_drops_only_that_input(
    tmp_path: Path, mock_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever goes wrong inside the handling of one input (here the core raising something it
    never should) drops that input, is counted per reason and logged with its traceback."""
    async with node_rig(tmp_path, VICTIM) as rig:
        replica = rig.replica
        real = replica.on_message

        def broken(sender: int, message: object) -> object:
            raise RuntimeError("boom")

        replica.on_message = broken
        with caplog.at_level(logging.ERROR):
            await propose(rig, rig.block(1, rig.world.genesis, rig.world.genesis_qc))
        replica.on_message = real
        assert metric(rig, "ordo_input_errors_total", input="message", reason="RuntimeError") == 1
        assert any(r.exc_info and "boom" in str(r.exc_info[1]) for r in caplog.records)
        await assert_alive(rig)


async def test_an_unexpected_error_in_a_peer_request_drops_only_that_request(
    tmp_path: Path, mock_clock: trio.abc.Clock
) -> None:
    async with node_rig(tmp_path, VICTIM) as rig:
        def broken(*args: object) -> bool:
            raise KeyError("boom")

        rig.node.accept_batch = broken  # type: ignore[method-assign]
        await rig.deliver(1, BatchMsg(rig.batch(author=1, seq=1)))
        assert metric(rig, "ordo_input_errors_total", input="BatchMsg", reason="KeyError") == 1
        await assert_alive(rig)


async def test_fetch_gives_up_when_the_caller_does_even_if_the_batch_then_arrives() -> None:
    """give_up is checked after each wait too: a batch arriving after the caller gave up (the
    proposal's round is over) does not hand back a result that triggers a stale recheck."""
    pool = BatchPool(10)
    sent: list[tuple[int, object]] = []

    async def load(digest: bytes) -> Batch | None:
        return None

    fetcher = BatchFetcher(pool, load, lambda to, m: sent.append((to, m)) is None, [1, 2, 3])
    batch = Batch.of(1, 1, 0, ())
    stale = False
    result: list[list[Batch] | None] = []

    async def get() -> None:
        result.append(await fetcher.get([batch.digest], prefer=[1], give_up=lambda: stale))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(get)
        await trio.testing.wait_all_tasks_blocked()
        assert sent
        stale = True  # e.g. the round moved on while the request was out
        pool.add(batch)
        fetcher.arrived(batch)
    assert result == [None]


async def test_an_unexpected_error_while_fetching_a_proposals_batches_is_contained(
    tmp_path: Path, mock_clock: trio.abc.Clock
) -> None:
    """The batch fetch runs as a task of its own: an error there must not end the nursery."""
    async with node_rig(tmp_path, VICTIM) as rig:
        async def broken(*args: object, **kwargs: object) -> None:
            raise ValueError("undecodable stored batch")

        rig.node.fetcher.get = broken  # type: ignore[method-assign]
        b1 = rig.block(1, rig.world.genesis, rig.world.genesis_qc, (rig.batch(author=1, seq=1),))
        await propose(rig, b1)
        assert metric(rig, "ordo_input_errors_total", input="batch_fetch", reason="ValueError") == 1
        await assert_alive(rig)


def test_local_faults_stay_fatal() -> None:
    """A failing disk is not an input to drop: storage and OS errors still stop the replica."""
    from prometheus_client import CollectorRegistry, Counter

    from sequencing.replica.input_guard import InputGuard
    from sequencing.storage import StorageError

    counter = Counter("errors", "", ["input", "reason"], registry=CollectorRegistry())
    guard = InputGuard(0, counter)
    for fault in (StorageError("disk"), OSError("io")):
        with pytest.raises(type(fault)), guard.handling("message"):
            raise fault
    with guard.handling("message"):
        raise LookupError("a bug")
    assert counter.labels("message", "LookupError")._value.get() == 1


async def test_the_readers_hook_takes_consensus_messages_batches_and_answers_at_once(tmp_path: Path) -> None:
    """The transport's connection readers offer each message to ``Node._deliver`` first: what needs
    no wait is handled there and then (no inbox, no task hop); a request that reads the ledger is
    left to the inbox and answered by the dispatch task; a failing handler is counted, not fatal."""
    from consensus.messages import Vote

    async with node_rig(tmp_path, VICTIM) as rig:
        node = rig.node
        batch = rig.batch(author=1, seq=1)
        assert node._deliver(1, BatchMsg(batch)) is True
        assert node.batches.get(batch.digest) is not None  # in the pool before any task ran
        b1 = rig.block(1, rig.world.genesis, rig.world.genesis_qc, (batch,))
        assert node._deliver(1, rig.world.proposal(b1)) is True
        await rig.settle()
        assert [v.block_id for v in rig.net.of_type(Vote)] == [b1.id]  # the core voted
        request = BatchRequest((batch.digest,))
        assert node._deliver(2, request) is False  # reads the ledger: the inbox's
        await rig.deliver(2, request)
        assert any(batch in r.batches for r in rig.net.of_type(BatchResponse))
        before = input_errors(rig)
        node.peer_service._catch_up = None  # type: ignore[assignment]  # a handler that raises
        from sequencing.replica.wire import StatusResponse

        assert node._deliver(2, StatusResponse(rig.world.genesis_qc, None, 0)) is True
        assert input_errors(rig) == before + 1
        await assert_alive(rig)
