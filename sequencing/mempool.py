"""The mempool: client items waiting to be batched. Bounded in items and bytes; a full pool
answers with :class:`MempoolFull` (the API turns it into 503 + Retry-After), never silence."""

from __future__ import annotations

from collections import OrderedDict

from .config import Limits
from .transactions import Item, item_txs


class MempoolFull(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(f"mempool full: {reason}; retry later")


class Mempool:
    def __init__(self, limits: Limits, *, remember: int = 1_000_000) -> None:
        self.limits = limits
        self._items: OrderedDict[bytes, Item] = OrderedDict()
        self._bytes = 0
        self._txs = 0
        self._recent: OrderedDict[bytes, None] = OrderedDict()
        self._remember = remember

    def __len__(self) -> int:
        return len(self._items)

    @property
    def tx_count(self) -> int:
        return self._txs

    @property
    def byte_size(self) -> int:
        return self._bytes

    def seen(self, item_id: bytes) -> bool:
        return item_id in self._items or item_id in self._recent

    def add(self, item: Item) -> bool:
        """Queue a validated item; False if it is a duplicate of one seen recently."""
        if self.seen(item.id):
            return False
        txs = len(item_txs(item))
        if self._txs + txs > self.limits.mempool_max_txs:
            raise MempoolFull(f"{self._txs} transactions queued (limit {self.limits.mempool_max_txs})")
        if self._bytes + item.size > self.limits.mempool_max_bytes:
            raise MempoolFull(f"{self._bytes} bytes queued (limit {self.limits.mempool_max_bytes})")
        self._items[item.id] = item
        self._bytes += item.size
        self._txs += txs
        return True

    def take(self, max_txs: int, max_bytes: int) -> list[Item]:
        """Remove and return items in arrival order, up to the limits (a bundle is never split;
        one oversize item is still returned alone so nothing gets stuck)."""
        out: list[Item] = []
        txs = size = 0
        while self._items:
            item_id, item = next(iter(self._items.items()))
            n = len(item_txs(item))
            if out and (txs + n > max_txs or size + item.size > max_bytes):
                break
            del self._items[item_id]
            self._bytes -= item.size
            self._txs -= n
            self._remember_id(item_id)
            out.append(item)
            txs += n
            size += item.size
        return out

    def requeue(self, items: list[Item]) -> None:
        """Put back items of a batch that expired uncommitted (front of the queue)."""
        for item in reversed(items):
            if item.id in self._items:
                continue
            self._recent.pop(item.id, None)
            self._items[item.id] = item
            self._items.move_to_end(item.id, last=False)
            self._bytes += item.size
            self._txs += len(item_txs(item))

    def _remember_id(self, item_id: bytes) -> None:
        self._recent[item_id] = None
        if len(self._recent) > self._remember:
            self._recent.popitem(last=False)
