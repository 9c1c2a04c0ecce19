"""The mempool's memory of recently queued ids (its duplicate window), bounded and compact.

Two generations of plain sets: new ids go into the current one; when it holds ``capacity // 2``
ids it becomes the previous one and the old previous one is dropped whole. So the newest
``capacity // 2`` ids are always remembered, never more than ``capacity`` (plus, with
``add_many``, the ids of one call: a batch's), and there are no false positives. A set costs ~42
bytes per id besides the id itself, against ~105 for the OrderedDict (an exact LRU) it replaces;
one generation is dropped at once, never one id at a time."""

from __future__ import annotations

from collections.abc import Iterable


class RecentIds:
    __slots__ = ("_current", "_generation", "_previous", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self._generation = capacity // 2
        self._current: set[bytes] = set()
        self._previous: set[bytes] = set()

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._current or item_id in self._previous

    def add(self, item_id: bytes) -> None:
        if len(self._current) >= self._generation:
            self._previous = self._current
            self._current = set()
        self._current.add(item_id)

    def add_many(self, item_ids: Iterable[bytes]) -> None:
        """``add`` for many ids at once (a generation may then pass ``capacity // 2`` by their number)."""
        if len(self._current) >= self._generation:
            self._previous = self._current
            self._current = set()
        self._current.update(item_ids)

    def isdisjoint(self, item_ids: Iterable[bytes]) -> bool:
        """Whether none of ``item_ids`` is remembered."""
        return self._current.isdisjoint(item_ids) and self._previous.isdisjoint(item_ids)

    def discard_many(self, item_ids: Iterable[bytes]) -> None:
        self._current.difference_update(item_ids)
        self._previous.difference_update(item_ids)

    def discard(self, item_id: bytes) -> None:
        self._current.discard(item_id)
        self._previous.discard(item_id)
