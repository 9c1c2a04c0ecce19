"""The one round timer a replica has: ``set(round, delay)`` replaces any earlier timer; when it
expires, ``run`` hands the round to a callback. Time comes from trio's clock, so tests can use
``autojump_clock``.

``set`` runs once per round, so it only moves the deadline of the cancel scope ``run`` sleeps in
(trio reschedules a deadline without waking the task); the task wakes only when a deadline
passes."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import trio


class RoundTimer:
    def __init__(self) -> None:
        self._round = 0
        self._deadline = math.inf
        self._scope: trio.CancelScope | None = None

    def set(self, round: int, delay: float) -> None:
        self._round = round
        self._deadline = trio.current_time() + delay
        if self._scope is not None:
            self._scope.deadline = self._deadline

    @property
    def deadline(self) -> float:
        return self._deadline

    async def run(self, on_expiry: Callable[[int], Awaitable[None]]) -> None:
        while True:
            with trio.CancelScope(deadline=self._deadline) as scope:
                self._scope = scope
                try:
                    await trio.sleep_forever()
                finally:
                    self._scope = None
            if trio.current_time() < self._deadline:
                continue  # set() moved the deadline after the old one passed, before we woke
            round, self._deadline = self._round, math.inf
            await on_expiry(round)
