"""What a block carries for the sequencer, and the deterministic rollup split.

The consensus payload is ``[batch digests, evidence]``. A block's transactions are taken batch by
batch in payload order; inside a batch, its plain transactions group by group (ascending rollup
id, arrival order within a group), then its bundles in order. A transaction already seen earlier
in the block, or committed in the block's window of recent blocks (:mod:`.tx_window`), is skipped,
and a bundle with any such transaction is skipped whole (bundles stay atomic). The block's
*slice* for a rollup is that rollup's transactions in this order; the slices in ascending rollup
order are the block's transactions in *tree order*, cut into the chunk leaves of the namespaced
Merkle tree whose root is the block's ``data_root`` (:mod:`.chunks`). Every
replica computes it the same way from the same batches, so per-rollup sub-logs are a function of
the global log. The work is per group and per batch (C-level set and list operations) wherever a
block has no duplicate transactions, which is the common case.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from consensus.encoding import DIGEST_SIZE, expect_bytes, expect_list, pack, unpack
from consensus.messages import Evidence

from .batches import Batch
from .block_tree import BlockTree
from .chunks import Slices, block_leaves
from .transactions import Bundle
from .tx_window import NOTHING_BEFORE, SeenBefore, id_set


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
    """The block's slices (ascending rollup id, none empty), its transaction ids in tree order
    (32 bytes each, concatenated), where its bundles landed and the NMT root; from
    :func:`assemble`, also the :class:`BlockTree` it hashed (kept for the API's proofs)."""

    slices: Slices
    tx_ids: bytes
    bundles: tuple[tuple[bytes, tuple[int, ...]], ...]  # (bundle id, positions in tree order)
    data_root: bytes
    tree: BlockTree | None = field(default=None, compare=False, repr=False)
    id_set: AbstractSet[bytes] | None = field(default=None, compare=False, repr=False)  # tx_ids as a set

    def block_tree(self) -> BlockTree:
        """The tree over the slices: the one assembled with them, else built now."""
        return self.tree if self.tree is not None else BlockTree(self.slices)

    @property
    def tx_count(self) -> int:
        return len(self.tx_ids) // DIGEST_SIZE

    def leaves(self) -> list[tuple[int, bytes]]:
        """The NMT leaves (chunks of the slices)."""
        return block_leaves(self.slices)

    def transactions(self) -> list[tuple[int, bytes]]:
        """``(rollup id, payload)`` of every transaction, in tree order."""
        return [(rid, p) for rid, payloads in self.slices for p in payloads]

    def ids(self) -> list[bytes]:
        """The transaction ids, in tree order."""
        return [self.tx_ids[i:i + DIGEST_SIZE] for i in range(0, len(self.tx_ids), DIGEST_SIZE)]



class _AllBut:
    """The split's window when a committed block is replayed: every id but the block's own counts
    as committed before it (the ones its window skipped, or that are not in it at all)."""

    __slots__ = ("_ids",)

    def __init__(self, ids: set[bytes]) -> None:
        self._ids = ids

    def isdisjoint(self, ids: Sequence[bytes]) -> bool:
        return self._ids.issuperset(ids)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id not in self._ids


class _Split:
    """The block's transactions as they are taken, per rollup."""

    def __init__(self, before: SeenBefore | _AllBut) -> None:
        self.before = before  # the ids of the block's window (committed before it)
        self.seen: set[bytes] = set()
        self.payloads: dict[int, list[bytes]] = {}
        self.ids: dict[int, list[bytes]] = {}
        self.bundles: list[tuple[bytes, list[tuple[int, int]]]] = []  # (id, [(rollup, index in slice)])

    def take_group(self, rollup_id: int, payloads: tuple[bytes, ...], ids: list[bytes]) -> None:
        seen = self.seen
        before = len(seen)
        if seen.isdisjoint(ids) and self.before.isdisjoint(ids):
            seen.update(ids)
            if len(seen) - before == len(ids):  # the common case: nothing in the group was seen before
                self.payloads.setdefault(rollup_id, []).extend(payloads)
                self.ids.setdefault(rollup_id, []).extend(ids)
                return
            seen.difference_update(ids)  # a transaction twice in the group; none was seen before it
        kept_payloads: list[bytes] = []
        kept_ids: list[bytes] = []
        committed_before = self.before
        for payload, tx_id in zip(payloads, ids, strict=True):
            if tx_id not in seen and tx_id not in committed_before:
                seen.add(tx_id)
                kept_payloads.append(payload)
                kept_ids.append(tx_id)
        if kept_ids:
            self.payloads.setdefault(rollup_id, []).extend(kept_payloads)
            self.ids.setdefault(rollup_id, []).extend(kept_ids)

    def take_bundle(self, bundle: Bundle) -> None:
        ids = [tx.id for tx in bundle.txs]
        if not self.seen.isdisjoint(ids) or not self.before.isdisjoint(ids):
            return
        self.seen.update(ids)
        places = []
        for tx in bundle.txs:
            payloads = self.payloads.setdefault(tx.rollup_id, [])
            places.append((tx.rollup_id, len(payloads)))
            payloads.append(tx.payload)
            self.ids.setdefault(tx.rollup_id, []).append(tx.id)
        self.bundles.append((bundle.id, places))

    def take(self, batches: Sequence[Batch]) -> None:
        for batch in batches:
            for (rollup_id, payloads), ids in zip(batch.groups, batch.group_ids(), strict=True):
                self.take_group(rollup_id, payloads, ids)
            for bundle in batch.bundles:
                self.take_bundle(bundle)

    def slices(self) -> tuple[Slices, bytes]:
        """The slices and the tx ids in tree order."""
        order = sorted(self.payloads)
        return (tuple((rid, tuple(self.payloads[rid])) for rid in order),
                b"".join([b"".join(self.ids[rid]) for rid in order]))

    def content(self) -> BlockContent:
        slices, tx_ids = self.slices()
        offsets: dict[int, int] = {}
        total = 0
        for rollup_id, payloads in slices:
            offsets[rollup_id] = total
            total += len(payloads)
        bundles = tuple((bid, tuple(offsets[rid] + i for rid, i in places)) for bid, places in self.bundles)
        tree = BlockTree(slices)
        return BlockContent(slices, tx_ids, bundles, tree.root, tree, self.seen)


def assemble(batches: Sequence[Batch], before: SeenBefore = NOTHING_BEFORE) -> BlockContent:
    """The deterministic split (module docstring): batches -> slices -> chunk leaves -> NMT root.
    ``before``: the ids of the block's window (:mod:`.tx_window`), skipped like those seen earlier
    in the block."""
    split = _Split(before)
    split.take(batches)
    return split.content()


class ReplayMismatch(ValueError):
    """A committed block's batches do not give back its transaction ids."""


def replay(batches: Sequence[Batch], tx_ids: bytes) -> Slices:
    """A committed block's slices again, from its batches (payload order) and its tx ids in tree
    order (the ledger keeps these rather than every payload a second time): the split of
    :func:`assemble`, with every id that is not the block's skipped as its window skipped it. A
    transaction twice in the block is taken where it was first seen, as the split took it, and a
    bundle is all or nothing. Raises :class:`ReplayMismatch` unless the ids come back exactly."""
    split = _Split(_AllBut(id_set(tx_ids)))
    split.take(batches)
    slices, ids = split.slices()
    if ids != tx_ids:
        raise ReplayMismatch(f"the batches give {len(ids) // DIGEST_SIZE} of the block's transactions back"
                             f" in another order or set than its {len(tx_ids) // DIGEST_SIZE}")
    return slices
