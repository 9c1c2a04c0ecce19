"""A bounded per-peer queue of encoded messages that drops its oldest entries when full: more
than ``capacity`` messages or ``max_bytes`` bytes (the newest message is always kept).

``put`` never blocks (the node must not stall on a slow peer); consensus tolerates the loss
through its timeouts and retransmissions. Each entry carries a release time (fault-injected
delay); release times never decrease, so a delayed queue keeps its order.
"""

from __future__ import annotations

from collections import deque

import trio


class SendQueue:
    __slots__ = ("_capacity", "_items", "_last_release", "_lot", "_max_bytes", "byte_size")

    def __init__(self, capacity: int, max_bytes: int = 1 << 62) -> None:
        if capacity < 1 or max_bytes < 1:
            raise ValueError("capacity and max_bytes must be positive")
        self._capacity = capacity
        self._max_bytes = max_bytes
        self.byte_size = 0
        self._items: deque[tuple[bytes, float]] = deque()
        self._last_release = 0.0
        self._lot = trio.lowlevel.ParkingLot()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, payload: bytes, release_at: float = 0.0) -> int:
        """Append ``payload``, to be written no earlier than ``release_at`` (trio clock).
        Returns how many of the oldest entries were dropped to make room."""
        self._last_release = max(self._last_release, release_at)
        self._items.append((payload, self._last_release))
        self.byte_size += len(payload)
        evicted = 0
        while len(self._items) > 1 and (len(self._items) > self._capacity or self.byte_size > self._max_bytes):
            self.byte_size -= len(self._items.popleft()[0])
            evicted += 1
        self._lot.unpark_all()
        return evicted

    def take_ready(self, now: float, max_bytes: int) -> list[bytes]:
        """Without waiting: the oldest entries released by ``now`` (trio clock) whose sizes add up
        to at most ``max_bytes``, in order (possibly none)."""
        items = self._items
        taken: list[bytes] = []
        while items and items[0][1] <= now and len(items[0][0]) <= max_bytes:
            payload = items.popleft()[0]
            max_bytes -= len(payload)
            self.byte_size -= len(payload)
            taken.append(payload)
        return taken

    async def get(self) -> tuple[bytes, float]:
        """The oldest entry and its release time, waiting (cancellably) until there is one."""
        while not self._items:
            await self._lot.park()
        await trio.lowlevel.checkpoint_if_cancelled()
        item = self._items.popleft()
        self.byte_size -= len(item[0])
        return item
