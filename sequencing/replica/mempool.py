"""The mempool: client items waiting to be batched. Bounded in items and bytes; a full pool
answers with :class:`MempoolFull` (the API turns it into 503 + Retry-After), never silence.

Every accepted item gets an arrival number (``arrivals`` after ``add``); ``take`` hands items out
in arrival order and records ``taken_through``, so the node knows when an item is in a batch."""

from __future__ import annotations

from collections import OrderedDict

from ..config import Limits
from ..rollup.transactions import Bundle, InvalidTransaction, Item, Transaction, item_txs
from .recent_ids import RecentIds


class MempoolFull(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(f"mempool full: {reason}; retry later")


class AlreadySubmitted(InvalidTransaction):
    """A bundle carries a transaction that was already submitted (the API answers 409)."""


class Mempool:
    def __init__(self, limits: Limits, *, remember: int = 500_000) -> None:
        self.limits = limits
        self._items: OrderedDict[bytes, Item] = OrderedDict()
        self._bytes = 0
        self._txs = 0
        self._recent = RecentIds(remember)  # the newest remember/2 .. remember ids (~115 B each)
        self._arrival: dict[bytes, int] = {}
        self._members: dict[bytes, None] = {}  # tx ids of queued bundles
        self.arrivals = 0
        self.taken_through = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def tx_count(self) -> int:
        return self._txs

    @property
    def byte_size(self) -> int:
        return self._bytes

    def seen(self, item_id: bytes) -> bool:
        """Whether a transaction or bundle id is queued or was queued recently (a transaction that
        went out inside a bundle counts too)."""
        return item_id in self._items or item_id in self._recent or item_id in self._members

    def add(self, item: Item) -> bool:
        """Queue a validated item; False if it is a duplicate of one seen recently. A bundle that
        repeats a transaction already submitted is refused (AlreadySubmitted): the block split
        would have to drop the whole bundle to keep that transaction from committing twice."""
        if self.seen(item.id):
            return False
        members = item_txs(item)
        if isinstance(item, Bundle):
            for tx in members:
                if self.seen(tx.id):
                    raise AlreadySubmitted(
                        f"transaction {tx.id.hex()[:16]} of this bundle was already submitted; "
                        "a bundle must carry new transactions"
                    )
        txs = len(members)
        if self._txs + txs > self.limits.mempool_max_txs:
            raise MempoolFull(f"{self._txs} transactions queued (limit {self.limits.mempool_max_txs})")
        if self._bytes + item.size > self.limits.mempool_max_bytes:
            raise MempoolFull(f"{self._bytes} bytes queued (limit {self.limits.mempool_max_bytes})")
        self._items[item.id] = item
        self._bytes += item.size
        self._txs += txs
        if isinstance(item, Bundle):
            self._members.update({tx.id: None for tx in members})
        self.arrivals += 1
        self._arrival[item.id] = self.arrivals
        return True

    def take(self, max_txs: int, max_bytes: int) -> list[Item]:
        """Remove and return items in arrival order, up to the limits (a bundle is never split;
        one oversize item is still returned alone so nothing gets stuck)."""
        out: list[Item] = []
        txs = size = 0
        for item in self._items.values():
            n = 1 if type(item) is Transaction else len(item_txs(item))
            item_size = item.size
            if out and (txs + n > max_txs or size + item_size > max_bytes):
                break
            out.append(item)
            txs += n
            size += item_size
        arrival = self._arrival
        taken_through = self.taken_through
        for item in out:
            del self._items[item.id]
            taken_through = max(taken_through, arrival.pop(item.id, 0))
            if isinstance(item, Bundle):
                for tx in item.txs:
                    self._members.pop(tx.id, None)
                    self._recent.add(tx.id)
            self._recent.add(item.id)
        self.taken_through = taken_through
        self._bytes -= size
        self._txs -= txs
        return out

    def requeue(self, items: list[Item]) -> None:
        """Put back items of a batch that expired uncommitted (front of the queue)."""
        for item in reversed(items):
            if item.id in self._items:
                continue
            self._recent.discard(item.id)
            self._items[item.id] = item
            self._items.move_to_end(item.id, last=False)
            if isinstance(item, Bundle):
                self._members.update({tx.id: None for tx in item.txs})
            self._bytes += item.size
            self._txs += len(item_txs(item))
