"""BatchFetcher's bookkeeping stays bounded: a fetch that gives up (a Byzantine leader's proposal
naming batches nobody has) leaves no waiter entry behind, while another fetch of the same batch
still wakes the moment it arrives."""

from __future__ import annotations

import trio
import trio.testing

from consensus.encoding import digest
from sequencing.replica.batch_fetcher import BatchFetcher
from sequencing.rollup.batches import Batch, BatchPool
from sequencing.rollup.transactions import Transaction


async def no_disk(d: bytes) -> Batch | None:
    return None


def fetcher(pool: BatchPool) -> BatchFetcher:
    return BatchFetcher(pool, no_disk, lambda to, m: True, [1, 2, 3], attempt_timeout=1.0)


async def test_given_up_fetches_leave_nothing_behind(autojump_clock: trio.testing.MockClock) -> None:
    f = fetcher(BatchPool(10))
    for round_ in range(50):  # a leader proposing batches that do not exist, round after round
        fake = [digest(b"fake", [round_, k]) for k in range(3)]
        calls = 0

        def give_up() -> bool:
            nonlocal calls
            calls += 1
            return calls > 1  # the round moved on after the first attempt

        assert await f.get(fake, give_up=give_up) is None
    assert f.waiting == 0


async def test_a_fetch_still_wakes_when_another_gave_up(autojump_clock: trio.testing.MockClock) -> None:
    pool = BatchPool(10)
    f = fetcher(pool)
    batch = Batch.of(1, 1, 0, (Transaction(1, b"x"),))
    woke: list[float] = []

    async def patient() -> None:
        await trio.sleep(0.5)
        assert await f.get([batch.digest]) == [batch]
        woke.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(patient)
        calls = 0

        def give_up() -> bool:
            nonlocal calls
            calls += 1
            return calls > 1

        assert await f.get([batch.digest], give_up=give_up) is None  # gave up at t = 1.0
        await trio.sleep(0.2)
        pool.add(batch)
        f.arrived(batch)
    assert woke and woke[0] - 1.2 < 0.01, "woken by the arrival, not by its attempt's timeout (t = 1.5)"
    assert f.waiting == 0
