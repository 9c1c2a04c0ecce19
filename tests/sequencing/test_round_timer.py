"""The round timer: one deadline, replaced by each ``set``; the expired round handed to a callback.
A replica sets it once per round, so setting it must not wake the timer's task each time."""

from __future__ import annotations

import trio
import trio.testing

from sequencing.replica.round_timer import RoundTimer


class _Steps(trio.abc.Instrument):
    """Counts the steps of tasks whose name contains ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.name in task.name:
            self.steps += 1


async def test_the_last_set_round_fires_once_at_its_deadline(autojump_clock: trio.testing.MockClock) -> None:
    timer = RoundTimer()
    fired: list[tuple[int, float]] = []

    async def on_expiry(round: int) -> None:
        fired.append((round, trio.current_time()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(timer.run, on_expiry)
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        timer.set(1, 5.0)
        await trio.sleep(1.0)
        timer.set(2, 3.0)  # replaces round 1's timer: fires at start + 4
        await trio.sleep(2.0)
        timer.set(3, 1.0)  # an earlier deadline than round 2's: start + 4
        await trio.sleep(10.0)
        nursery.cancel_scope.cancel()
    assert [(r, round(t - start, 6)) for r, t in fired] == [(3, 4.0)]


async def test_setting_the_timer_does_not_wake_its_task(autojump_clock: trio.testing.MockClock) -> None:
    timer = RoundTimer()
    fired: list[int] = []

    async def on_expiry(round: int) -> None:
        fired.append(round)

    steps = _Steps("RoundTimer.run")
    trio.lowlevel.add_instrument(steps)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(timer.run, on_expiry)
            await trio.testing.wait_all_tasks_blocked()
            before = steps.steps
            for r in range(1, 101):  # a round every 10 ms, each setting a 1 s timer
                timer.set(r, 1.0)
                await trio.sleep(0.01)
            during = steps.steps - before
            await trio.sleep(2.0)
            nursery.cancel_scope.cancel()
    finally:
        trio.lowlevel.remove_instrument(steps)
    assert fired == [100]
    assert during <= 2, f"the timer task ran {during} times for 100 set() calls"
