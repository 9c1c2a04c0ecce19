"""The one round timer a replica has: ``set(round, delay)`` replaces any earlier timer; when it
expires, ``run`` hands the round to a callback. Time comes from trio's clock, so tests can use
``autojump_clock``."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import trio


class RoundTimer:
    def __init__(self) -> None:
        self._round = 0
        self._deadline = math.inf
        self._changed = trio.Event()

    def set(self, round: int, delay: float) -> None:
        self._round = round
        self._deadline = trio.current_time() + delay
        self._changed.set()

    @property
    def deadline(self) -> float:
        return self._deadline

    async def run(self, on_expiry: Callable[[int], Awaitable[None]]) -> None:
        while True:
            self._changed = trio.Event()
            with trio.move_on_at(self._deadline):
                await self._changed.wait()
                continue
            round, self._deadline = self._round, math.inf
            await on_expiry(round)
