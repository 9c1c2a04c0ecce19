"""A cache of the newest entries by key, bounded in count and in bytes (as the caller sizes each
entry). The oldest go first, and the newest entry is always kept, whatever its size: the one a
caller just put is the one it is about to need. Used for committed batch bodies, recent commits,
the API's trees and subscription events."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    def __init__(self, size: int, max_bytes: int = 1 << 62) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()  # key -> (value, its size)
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[0]

    def use(self, key: K) -> V | None:
        """``get``, and the entry counts as the newest (least recently used goes first)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: K, value: V, size: int = 0) -> None:
        """Keep ``value`` as the newest entry (replacing the key's old one), then drop the oldest
        while over a bound."""
        old = self._entries.pop(key, None)
        self.bytes += size - (0 if old is None else old[1])
        self._entries[key] = (value, size)
        while len(self._entries) > 1 and (len(self._entries) > self.size or self.bytes > self.max_bytes):
            self.bytes -= self._entries.popitem(last=False)[1][1]
