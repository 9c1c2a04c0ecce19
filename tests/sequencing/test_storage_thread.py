"""replica/stores.StorageThread: the ledger's one long-lived worker thread (replaces a
trio.to_thread.run_sync per ledger call)."""

from __future__ import annotations

import threading
import time
from functools import partial

import pytest
import trio

from sequencing.replica.stores import StorageThread, Stores


class Boom(Exception):
    pass


async def test_calls_run_in_order_on_one_worker_thread_and_return_or_raise() -> None:
    worker = StorageThread("test-ledger")
    seen: list[tuple[int, int]] = []

    def job(i: int) -> int:
        seen.append((i, threading.get_ident()))
        return i * 10

    assert [await worker.run(partial(job, i)) for i in range(20)] == [i * 10 for i in range(20)]
    assert [i for i, _ in seen] == list(range(20))
    threads = {t for _, t in seen}
    assert len(threads) == 1 and threading.get_ident() not in threads

    def fail() -> None:
        raise Boom("typed, as raised")

    with pytest.raises(Boom, match="typed, as raised"):
        await worker.run(fail)
    assert await worker.run(lambda: "after a failure") == "after a failure"


async def test_a_call_handed_over_is_not_abandoned_when_its_caller_is_cancelled() -> None:
    """A write in progress runs to its end and its caller sees it end (the ledger is never re-entered
    while a cancelled caller's write is still running); the cancellation lands afterwards."""
    worker = StorageThread("test-ledger")
    started, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def slow_write() -> str:
        started.set()
        release.wait(10)
        finished.append("write")
        return "written"

    results: list[str] = []
    scope = trio.CancelScope()

    async def caller() -> None:
        with scope:
            results.append(await worker.run(slow_write))
            await trio.lowlevel.checkpoint()  # the cancellation is delivered here, after the write
            results.append("not reached")
        results.append("cancelled")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(caller)
            await trio.to_thread.run_sync(started.wait, 10)
            scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert finished == [] and results == []  # the caller still waits for the write
            release.set()
    assert finished == ["write"] and results == ["written", "cancelled"]


async def test_the_idle_thread_ends_and_the_next_call_starts_another() -> None:
    worker = StorageThread("test-ledger", idle=0.01)
    first = await worker.run(threading.current_thread)
    deadline = time.monotonic() + 10
    while first.is_alive():
        assert time.monotonic() < deadline, "the idle worker thread never ended"
        await trio.sleep(0.01)
    got: list[threading.Thread] = []
    rescued = False
    async with trio.open_nursery() as nursery:
        async def second_call() -> None:
            got.append(await worker.run(threading.current_thread))

        nursery.start_soon(second_call)
        with trio.move_on_after(10):
            while not got:
                await trio.sleep(0.01)
        if not got:  # handed to a thread that already ended: drain it by hand so the test can fail
            rescued = True
            threading.Thread(target=worker._work, daemon=True).start()
    assert not rescued, "a call after the idle end waited forever (no thread took it)"
    assert got[0] is not first
    assert await worker.run(lambda: 7) == 7


async def test_ledger_calls_from_many_tasks_never_overlap() -> None:
    stores = Stores(max_frame_bytes=1 << 20)
    inside = threading.Lock()
    done: list[int] = []

    def call(i: int) -> int:
        assert inside.acquire(blocking=False), "two ledger calls overlapped"
        try:
            time.sleep(0.001)
            done.append(i)
            return i
        finally:
            inside.release()

    async with trio.open_nursery() as nursery:
        for i in range(30):
            nursery.start_soon(stores.ledger_call, call, i)
    assert sorted(done) == list(range(30))


async def test_a_safety_call_runs_without_letting_other_tasks_in() -> None:
    """A vote's safety save is on the round's critical path: every yield to the scheduler there
    waits for one pass of all other runnable tasks (batches, clients: ~3 ms each at max load).
    Catches: a lock or a checkpoint before the call (two yields made a vote's save ~7 ms). trio
    may run a batch of runnable tasks in either order, so a yield lets the other task in first
    only half the time: 20 tries miss one with probability 2**-20."""
    stores = Stores(max_frame_bytes=1 << 20)
    for _ in range(20):
        ran: list[str] = []

        async def other(ran: list[str] = ran) -> None:
            ran.append("other task")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)  # runnable before the call below
            result = await stores.safety_call(lambda x, ran=ran: ran.append(f"safety {x}") or x, 7)
            ran.append("after the call")
        assert result == 7
        assert ran == ["safety 7", "after the call", "other task"]


async def test_a_cancelled_caller_gets_no_safety_call() -> None:
    stores = Stores(max_frame_bytes=1 << 20)
    ran: list[int] = []
    with trio.CancelScope() as scope:
        scope.cancel()
        await stores.safety_call(ran.append, 1)
    assert ran == [] and scope.cancelled_caught
