"""Batches (Narwhal / Quorum-Store style) and the pool of batches a replica knows.

A replica packs its clients' items into a :class:`Batch` and broadcasts it; proposals carry batch
digests only. A batch created when its author had committed height ``h`` may be included only in
blocks of height ``h .. h + batch_ttl_blocks``; after that it expires (its author re-batches the
items), which bounds how far back duplicate detection has to look.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from consensus.encoding import digest, expect_int, expect_list, pack, unpack

from ..config import Limits
from .transactions import Item, item_from_wire, item_to_wire, item_txs


@dataclass(frozen=True, slots=True)
class Batch:
    author: int
    seq: int
    created_height: int
    items: tuple[Item, ...]
    digest: bytes = field(init=False, repr=False, compare=False)
    tx_count: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", digest(b"ordo/batch", self.to_wire()))
        object.__setattr__(self, "tx_count", sum(len(item_txs(i)) for i in self.items))

    def to_wire(self) -> list[Any]:
        return [self.author, self.seq, self.created_height, [item_to_wire(i) for i in self.items]]

    @classmethod
    def from_wire(cls, wire: Any) -> Batch:
        author, seq, created, items = expect_list(wire, "batch", length=4)
        return cls(
            expect_int(author, "batch.author", hi=1023),
            expect_int(seq, "batch.seq"),
            expect_int(created, "batch.created_height"),
            tuple(item_from_wire(i) for i in expect_list(items, "batch.items", max_len=1 << 20)),
        )

    def encode(self) -> bytes:
        return pack(self.to_wire())

    @classmethod
    def decode(cls, data: bytes, max_size: int) -> Batch:
        return cls.from_wire(unpack(data, max_size=max_size))

    def validate(self, limits: Limits) -> None:
        """Raises InvalidTransaction (a ValueError) if any item or the batch breaks a limit."""
        from .transactions import InvalidTransaction

        if not self.items:
            raise InvalidTransaction("empty batch")
        if self.tx_count > limits.batch_max_txs:
            raise InvalidTransaction(f"batch of {self.tx_count} transactions exceeds {limits.batch_max_txs}")
        for item in self.items:
            item.validate(limits)

    def live_at(self, height: int, ttl: int) -> bool:
        return self.created_height <= height <= self.created_height + ttl


class BatchPool:
    """Known, not yet committed batches in arrival order, plus the digests committed within the
    last ``ttl`` heights (enough to reject any re-inclusion, since batches expire), plus the bodies
    of recently committed batches for fetches: at most ``keep_bodies`` of them and ``keep_bytes``
    of payload (the newest body is kept even if larger); older ones are read from the ledger."""

    def __init__(self, ttl: int, *, keep_bodies: int = 4096, keep_bytes: int = 32 * 1024 * 1024) -> None:
        self.ttl = ttl
        self._pending: OrderedDict[bytes, Batch] = OrderedDict()
        self._committed: dict[bytes, int] = {}
        self._bodies: OrderedDict[bytes, tuple[Batch, int]] = OrderedDict()  # recently committed: (body, bytes)
        self._keep_bodies = keep_bodies
        self._keep_bytes = keep_bytes
        self.kept_body_bytes = 0
        self.height = 0  # the highest committed height reported to mark_committed

    @staticmethod
    def body_bytes(batch: Batch) -> int:
        return sum(item.size for item in batch.items)

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, batch_digest: object) -> bool:
        return batch_digest in self._pending

    def get(self, batch_digest: bytes) -> Batch | None:
        """A pending batch, or the body of a recently committed one."""
        kept = self._bodies.get(batch_digest)
        return self._pending.get(batch_digest) or (kept[0] if kept is not None else None)

    def stash(self, batch: Batch) -> None:
        """Keep a body known to belong to a committed block (catch-up) where ``get`` finds it."""
        if batch.digest in self._bodies:
            return
        size = self.body_bytes(batch)
        self._bodies[batch.digest] = (batch, size)
        self.kept_body_bytes += size
        while len(self._bodies) > 1 and (
            len(self._bodies) > self._keep_bodies or self.kept_body_bytes > self._keep_bytes
        ):
            self.kept_body_bytes -= self._bodies.popitem(last=False)[1][1]

    def add(self, batch: Batch) -> bool:
        if batch.digest in self._pending or batch.digest in self._committed:
            return False
        self._pending[batch.digest] = batch
        return True

    def own(self, author: int) -> list[Batch]:
        return [b for b in self._pending.values() if b.author == author]

    def remember_committed(self, digests: Iterable[tuple[bytes, int]]) -> None:
        """Seed the committed window after a restart (from storage)."""
        for d, h in digests:
            self._committed[d] = h
            self._pending.pop(d, None)

    def committed_at(self, batch_digest: bytes) -> int | None:
        return self._committed.get(batch_digest)

    def select(self, *, exclude: set[bytes], height: int, max_batches: int, max_txs: int) -> list[Batch]:
        """Batches a leader may propose at ``height``, oldest first, within the block limits."""
        out: list[Batch] = []
        txs = 0
        for batch in self._pending.values():
            if batch.digest in exclude or not batch.live_at(height, self.ttl):
                continue
            if txs + batch.tx_count > max_txs:
                continue
            out.append(batch)
            txs += batch.tx_count
            if len(out) >= max_batches:
                break
        return out

    def mark_committed(self, digests: Iterable[bytes], height: int) -> None:
        self.height = max(self.height, height)
        for d in digests:
            batch = self._pending.pop(d, None)
            if batch is not None:
                self.stash(batch)
            self._committed[d] = height

    def expire(self, committed_height: int) -> list[Batch]:
        """Drop batches that can no longer be included; returns them (authors re-batch theirs)."""
        expired = [b for b in self._pending.values() if b.created_height + self.ttl < committed_height]
        for b in expired:
            del self._pending[b.digest]
        horizon = committed_height - 2 * self.ttl
        if horizon > 0:
            self._committed = {d: h for d, h in self._committed.items() if h >= horizon}
        return expired
