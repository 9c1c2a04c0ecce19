"""Batches (Narwhal / Quorum-Store style) and the pool of batches a replica knows.

A replica packs its clients' items into a :class:`Batch` and broadcasts it; proposals carry batch
digests only. A batch created when its author had committed height ``h`` may be included only in
blocks of height ``h .. h + batch_ttl_blocks``; after that it expires (its author re-batches the
items), which bounds how far back duplicate detection has to look.

A batch travels and is stored as one opaque body, encoded once by its author::

    body   = pack([author, seq, created_height, [group, ...], [bundle, ...]])
    group  = [rollup_id, [payload, ...]]          plain transactions of one rollup, arrival order;
                                                  groups in strictly ascending rollup id, none empty
    bundle = [[rollup_id, payload], ...]          an atomic bundle, in arrival order

and its digest is ``blake2b("ordo/batch", body)`` over the bytes as sent (the canonical encoding
for an honest author, whose digest is then ``digest(b"ordo/batch", wire)`` as everywhere else).
A receiver hashes the body once, decodes it with one msgpack call and checks limits per group,
not per transaction; it keeps and forwards the same bytes. Per-transaction objects
(:class:`Transaction`) are made only where needed (:meth:`Batch.items`: re-queueing an expired own
batch, tests); transaction ids are computed once per batch, on first use (:meth:`Batch.group_ids`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from consensus.encoding import DIGEST_SIZE, expect_int, expect_list, pack, unpack
from consensus.errors import DecodeError

from ..config import Limits
from .bounded_cache import BoundedCache
from .transactions import Bundle, InvalidTransaction, Item, Run, Transaction, group_tx_ids

Group = tuple[int, tuple[bytes, ...]]  # (rollup id, payloads)

_BATCH_PERSON = b"ordo/batch".ljust(16, b"\0")
MAX_BATCH_ENTRIES = 1 << 20


def batch_digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=DIGEST_SIZE, person=_BATCH_PERSON).digest()


@dataclass(frozen=True, slots=True)
class Batch:
    """A decoded batch body. Build one with :meth:`of` (an author) or :meth:`decode` (a receiver);
    two batches are equal when their bodies are."""

    body: bytes
    author: int = field(compare=False)
    seq: int = field(compare=False)
    created_height: int = field(compare=False)
    groups: tuple[Group, ...] = field(compare=False, repr=False)
    bundles: tuple[Bundle, ...] = field(compare=False, repr=False)
    digest: bytes = field(init=False, repr=False, compare=False)
    tx_count: int = field(init=False, repr=False, compare=False)
    _ids: list[list[bytes]] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", batch_digest(self.body))
        count = sum(len(payloads) for _, payloads in self.groups) + sum(len(b.txs) for b in self.bundles)
        object.__setattr__(self, "tx_count", count)

    @classmethod
    def of(cls, author: int, seq: int, created_height: int, items: Iterable[Item | Run]) -> Batch:
        """An author's batch of ``items`` (plain transactions grouped by rollup, arrival order kept;
        a :class:`Run` brings its ids, which are then not computed again)."""
        by_rollup: dict[int, list[bytes]] = {}
        ids_by_rollup: dict[int, list[bytes]] = {}
        bundles: list[Bundle] = []
        for item in items:
            if isinstance(item, Run):
                by_rollup.setdefault(item.rollup_id, []).extend(item.payloads)
                ids_by_rollup.setdefault(item.rollup_id, []).extend(item.ids)
            elif isinstance(item, Bundle):
                bundles.append(item)
            else:
                by_rollup.setdefault(item.rollup_id, []).append(item.payload)
                ids_by_rollup.setdefault(item.rollup_id, []).append(item.id)
        order = sorted(by_rollup)
        groups = tuple((rid, tuple(by_rollup[rid])) for rid in order)
        wire = [author, seq, created_height, [[rid, by_rollup[rid]] for rid in order],
                [b.to_wire() for b in bundles]]
        batch = cls(pack(wire), author, seq, created_height, groups, tuple(bundles))
        object.__setattr__(batch, "_ids", [ids_by_rollup[rid] for rid in order])  # known: not hashed again
        return batch

    @classmethod
    def decode(cls, body: bytes, max_size: int) -> Batch:
        """Decode a received body; raises DecodeError on a wrong shape (limits: :meth:`validate`)."""
        if not isinstance(body, bytes):
            raise DecodeError("batch: body must be bytes")
        author, seq, created, groups, bundles = expect_list(unpack(body, max_size=max_size), "batch", length=5)
        decoded: list[Group] = []
        for group in expect_list(groups, "batch.groups", max_len=MAX_BATCH_ENTRIES):
            rollup_id, payloads = expect_list(group, "batch.group", length=2)
            payloads = expect_list(payloads, "batch.group.payloads", max_len=MAX_BATCH_ENTRIES)
            if set(map(type, payloads)) != {bytes}:
                raise DecodeError("batch.group.payloads: every payload must be bytes, and a group not empty")
            decoded.append((expect_int(rollup_id, "batch.group.rollup_id", hi=2**32 - 1), tuple(payloads)))
        for (a, _), (b, _) in pairwise(decoded):
            if a >= b:
                raise DecodeError("batch.groups: rollup ids must be strictly ascending")
        return cls(
            body,
            expect_int(author, "batch.author", hi=1023),
            expect_int(seq, "batch.seq"),
            expect_int(created, "batch.created_height"),
            tuple(decoded),
            tuple(Bundle.from_wire(b) for b in expect_list(bundles, "batch.bundles", max_len=MAX_BATCH_ENTRIES)),
        )

    def encode(self) -> bytes:
        return self.body

    def to_wire(self) -> bytes:
        """The body itself: a frame carries it as one bin field."""
        return self.body

    @classmethod
    def from_wire(cls, wire: Any, max_size: int = 1 << 26) -> Batch:
        if not isinstance(wire, bytes):
            raise DecodeError("batch: expected the body as bytes")
        return cls.decode(wire, max_size)

    def validate(self, limits: Limits) -> None:
        """Raises InvalidTransaction (a ValueError) if any item or the batch breaks a limit; the
        checks run per group (C-level passes over its payloads), not per transaction."""
        if not self.tx_count:
            raise InvalidTransaction("empty batch")
        if self.tx_count > limits.batch_max_txs:
            raise InvalidTransaction(f"batch of {self.tx_count} transactions exceeds {limits.batch_max_txs}")
        for rollup_id, payloads in self.groups:
            if not 0 <= rollup_id <= limits.max_rollup_id:
                raise InvalidTransaction(f"rollup_id {rollup_id} outside [0, {limits.max_rollup_id}]")
            if min(map(len, payloads)) == 0:
                raise InvalidTransaction("payload must not be empty")
            longest = max(map(len, payloads))
            if longest > limits.max_tx_bytes:
                raise InvalidTransaction(f"payload of {longest} bytes exceeds {limits.max_tx_bytes}")
        for bundle in self.bundles:
            bundle.validate(limits)

    def items(self) -> tuple[Item, ...]:
        """The batch as client items (plain transactions by group, then bundles)."""
        plain = tuple(Transaction(rid, p) for rid, payloads in self.groups for p in payloads)
        return plain + self.bundles

    def runs(self) -> list[Run | Bundle]:
        """The batch as mempool entries: a run per group, then the bundles (requeueing it)."""
        runs: list[Run | Bundle] = [Run.of(rid, payloads, ids)
                                    for (rid, payloads), ids in zip(self.groups, self.group_ids(), strict=True)]
        return [*runs, *self.bundles]

    def group_ids(self) -> list[list[bytes]]:
        """The transaction ids of each group (computed once, on first use)."""
        ids = self._ids
        if ids is None:
            ids = [group_tx_ids(rid, payloads) for rid, payloads in self.groups]
            object.__setattr__(self, "_ids", ids)
        return ids

    def live_at(self, height: int, ttl: int) -> bool:
        return self.created_height <= height <= self.created_height + ttl


class BatchPool:
    """Known, not yet committed batches in arrival order, plus the digests committed within the
    last ``ttl`` heights (enough to reject any re-inclusion, since batches expire), plus the bodies
    of recently committed batches for fetches: at most ``keep_bodies`` of them and ``keep_bytes``
    of bodies (the newest is kept even if larger); older ones are read from the ledger. A committed
    body is kept as its bytes alone and decoded again when asked for (a lagging peer's fetch, a
    missed content cache): its payloads as objects would double what it holds."""

    def __init__(self, ttl: int, *, keep_bodies: int = 4096, keep_bytes: int = 32 * 1024 * 1024,
                 author_bytes: int = 1 << 62) -> None:
        self.ttl = ttl
        self.author_bytes = author_bytes  # pending body bytes per author that has_room allows
        self._pending: OrderedDict[bytes, Batch] = OrderedDict()
        self._pending_bytes: dict[int, int] = {}  # author -> body bytes of its pending batches
        self._committed: dict[bytes, int] = {}
        self._pruned_below = 0  # committed digests below this height were dropped
        self._bodies: BoundedCache[bytes, bytes] = BoundedCache(keep_bodies, keep_bytes)  # committed: digest -> body
        self.height = 0  # the highest committed height reported to mark_committed

    @staticmethod
    def body_bytes(batch: Batch) -> int:
        return len(batch.body)

    @property
    def kept_body_bytes(self) -> int:
        return self._bodies.bytes

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, batch_digest: object) -> bool:
        return batch_digest in self._pending

    def get(self, batch_digest: bytes) -> Batch | None:
        """A pending batch, or a recently committed one (decoded again from its body)."""
        batch = self._pending.get(batch_digest)
        if batch is not None:
            return batch
        body = self._bodies.get(batch_digest)
        return None if body is None else Batch.decode(body, len(body))

    def stash(self, batch: Batch) -> None:
        """Keep a body known to belong to a committed block (catch-up) where ``get`` finds it."""
        if batch.digest not in self._bodies:
            self._bodies.put(batch.digest, batch.body, self.body_bytes(batch))

    def add(self, batch: Batch) -> bool:
        if batch.digest in self._pending or batch.digest in self._committed:
            return False
        self._pending[batch.digest] = batch
        self._pending_bytes[batch.author] = self._pending_bytes.get(batch.author, 0) + len(batch.body)
        return True

    def _drop_pending(self, batch_digest: bytes) -> Batch | None:
        batch = self._pending.pop(batch_digest, None)
        if batch is not None:
            left = self._pending_bytes[batch.author] - len(batch.body)
            if left:
                self._pending_bytes[batch.author] = left
            else:
                del self._pending_bytes[batch.author]
        return batch

    def pending_bytes(self, author: int) -> int:
        """Body bytes of the author's pending batches."""
        return self._pending_bytes.get(author, 0)

    def has_room(self, batch: Batch) -> bool:
        """Whether ``batch`` keeps its author within ``author_bytes`` of pending bodies (an author
        with nothing pending always has room for one batch). An honest author stays within it (its
        batcher waits: ClientIntake), so only a flood needs refusing; a batch a proposal names is
        fetched and taken whatever the bound (Payloads.accept_batch)."""
        held = self.pending_bytes(batch.author)
        return held == 0 or held + len(batch.body) <= self.author_bytes

    def own(self, author: int) -> list[Batch]:
        return [b for b in self._pending.values() if b.author == author]

    def remember_committed(self, digests: Iterable[tuple[bytes, int]]) -> None:
        """Seed the committed window after a restart (from storage)."""
        for d, h in digests:
            self._committed[d] = h
            self._drop_pending(d)

    def committed_at(self, batch_digest: bytes) -> int | None:
        return self._committed.get(batch_digest)

    def select(self, *, exclude: set[bytes], height: int, max_batches: int, max_txs: int,
               skip: Callable[[Batch], bool] | None = None) -> list[Batch]:
        """Batches a leader may propose at ``height``, oldest first, within the block limits
        (without those ``skip`` picks: a fault-injection mode)."""
        out: list[Batch] = []
        txs = 0
        for batch in self._pending.values():
            if batch.digest in exclude or not batch.live_at(height, self.ttl):
                continue
            if skip is not None and skip(batch):
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
            batch = self._drop_pending(d)
            if batch is not None:
                self.stash(batch)
            self._committed[d] = height

    def expired(self, batch: Batch, committed_height: int | None = None) -> bool:
        """Whether no block above ``committed_height`` (the pool's height by default) may include
        ``batch`` any more."""
        return batch.created_height + self.ttl < (self.height if committed_height is None else committed_height)

    def expire(self, committed_height: int) -> list[Batch]:
        """Drop batches that can no longer be included; returns them (authors re-batch theirs)."""
        expired = [b for b in self._pending.values() if self.expired(b, committed_height)]
        for b in expired:
            self._drop_pending(b.digest)
        horizon = committed_height - 2 * self.ttl
        if horizon >= self._pruned_below + max(1, self.ttl // 4):  # amortised: not a rebuild per commit
            self._committed = {d: h for d, h in self._committed.items() if h >= horizon}
            self._pruned_below = horizon
        return expired
