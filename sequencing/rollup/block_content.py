"""What a block carries for the sequencer, and the deterministic rollup split.

The consensus payload is ``[batch digests, evidence]``. A block's transactions are its batches'
items in payload order, bundles expanded in place, where a transaction already seen earlier in the
block is skipped and a bundle with any such transaction is skipped whole (bundles stay atomic);
then they are stably grouped by rollup id (tree order): the block's *slices*, cut into chunks
(:mod:`.chunks`), are the leaves of the namespaced Merkle tree whose root is the block's
``data_root``. Every replica computes it the same way from the same batches, so per-rollup sub-logs
are a function of the global log.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Generic, TypeVar

from consensus.encoding import DIGEST_SIZE, expect_bytes, expect_list, pack, unpack
from consensus.messages import Evidence

from .batches import Batch
from .chunks import block_leaves
from .nmt import NamespacedMerkleTree
from .transactions import Bundle, Transaction


@dataclass(frozen=True, slots=True)
class BlockPayload:
    batches: tuple[bytes, ...]
    evidence: tuple[Evidence, ...]

    def encode(self) -> bytes:
        return pack([list(self.batches), [e.to_wire() for e in self.evidence]])

    @classmethod
    def decode(cls, data: bytes) -> BlockPayload:
        batches, evidence = expect_list(unpack(data, max_size=1 << 22), "payload", length=2)
        return cls(
            tuple(expect_bytes(d, "payload.batch", size=DIGEST_SIZE)
                  for d in expect_list(batches, "payload.batches")),
            tuple(Evidence.from_wire(e) for e in expect_list(evidence, "payload.evidence", max_len=4096)),
        )


@dataclass(frozen=True, slots=True)
class BlockContent:
    """The block's transactions in tree order, with ids, bundle positions and the NMT root."""

    leaves: tuple[tuple[int, bytes], ...]
    tx_ids: tuple[bytes, ...]
    bundles: tuple[tuple[bytes, tuple[int, ...]], ...]
    data_root: bytes

    @property
    def tx_count(self) -> int:
        return len(self.leaves)

    @property
    def slices(self) -> tuple[tuple[int, tuple[bytes, ...]], ...]:
        """The transactions grouped by rollup: ``(rollup id, payloads)``, ascending ids, none empty."""
        return slices_of(self.leaves)

    def tree(self) -> NamespacedMerkleTree:
        """The NMT over the chunks of the slices (:func:`.chunks.block_leaves`)."""
        return NamespacedMerkleTree(block_leaves(self.slices))


def slices_of(leaves: Sequence[tuple[int, bytes]]) -> tuple[tuple[int, tuple[bytes, ...]], ...]:
    """Transactions in tree order (grouped by rollup id) -> the block's slices."""
    return tuple((rid, tuple(p for _, p in group)) for rid, group in groupby(leaves, key=lambda leaf: leaf[0]))


def assemble(batches: Sequence[Batch]) -> BlockContent:
    """The deterministic split: block order -> stable grouping by rollup id -> NMT root."""
    seen: set[bytes] = set()
    txs: list[Transaction] = []
    bundle_members: list[tuple[bytes, list[int]]] = []
    for batch in batches:
        for item in batch.items:
            members = item.txs if isinstance(item, Bundle) else (item,)
            if any(tx.id in seen for tx in members):
                continue
            seen.update(tx.id for tx in members)
            if isinstance(item, Bundle):
                bundle_members.append((item.id, list(range(len(txs), len(txs) + len(item.txs)))))
            txs.extend(members)
    order = sorted(range(len(txs)), key=lambda i: txs[i].rollup_id)  # stable
    position = {original: leaf for leaf, original in enumerate(order)}
    leaves = tuple((txs[i].rollup_id, txs[i].payload) for i in order)
    tx_ids = tuple(txs[i].id for i in order)
    bundles = tuple((bid, tuple(position[i] for i in members)) for bid, members in bundle_members)
    return BlockContent(leaves, tx_ids, bundles, NamespacedMerkleTree(block_leaves(slices_of(leaves))).root)


T = TypeVar("T")


class TreeCache(Generic[T]):
    """The last few blocks' NMTs: subscriptions for many rollups read the same heights."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._trees: OrderedDict[int, T] = OrderedDict()

    def get(self, height: int) -> T | None:
        tree = self._trees.get(height)
        if tree is not None:
            self._trees.move_to_end(height)
        return tree

    def put(self, height: int, tree: T) -> None:
        self._trees[height] = tree
        if len(self._trees) > self._size:
            self._trees.popitem(last=False)
