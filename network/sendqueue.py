"""A bounded per-peer queue of encoded messages that drops its oldest entry when full.

``put`` never blocks (the node must not stall on a slow peer); consensus tolerates the loss
through its timeouts and retransmissions. Each entry carries a release time (fault-injected
delay); release times never decrease, so a delayed queue keeps its order.
"""

from __future__ import annotations

from collections import deque

import trio


class SendQueue:
    __slots__ = ("_capacity", "_items", "_last_release", "_lot")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._items: deque[tuple[bytes, float]] = deque()
        self._last_release = 0.0
        self._lot = trio.lowlevel.ParkingLot()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, payload: bytes, release_at: float = 0.0) -> bool:
        """Append ``payload``, to be written no earlier than ``release_at`` (trio clock).
        Returns True if the oldest entry was dropped to make room."""
        evicted = len(self._items) >= self._capacity
        if evicted:
            self._items.popleft()
        self._last_release = max(self._last_release, release_at)
        self._items.append((payload, self._last_release))
        self._lot.unpark_all()
        return evicted

    async def get(self) -> tuple[bytes, float]:
        """The oldest entry and its release time, waiting (cancellably) until there is one."""
        while not self._items:
            await self._lot.park()
        await trio.lowlevel.checkpoint_if_cancelled()
        return self._items.popleft()
