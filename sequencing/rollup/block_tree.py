"""The prover's side of :mod:`.proofs`: a committed block's slices and the NMT over their chunks.

Built once per block from its slices (``(rollup id, payloads)``, ascending ids, none empty): by
``block_content.assemble`` when a replica proposes or verifies the block (the executor then hands
it to the API with the commit), or by the API from the ledger for an older height. The tree
hashes one leaf per chunk, so building it costs one hash per ``CHUNK_TXS`` transactions; it keeps
the nodes, not a second copy of the data, and a slice proof is that rollup's payloads plus at
most 40 nodes.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence

from consensus.commit_proof import CommitProof

from .chunks import CHUNK_TXS, Slices, block_leaves, chunk_count, locate
from .nmt import NamespacedMerkleTree
from .proofs import BundleProof, SliceProof
from .transactions import Bundle, Transaction


class BlockTree:
    """One block's slices and NMT. Raises ``ValueError`` for slices out of order or empty, and like
    :class:`.nmt.NamespacedMerkleTree` for an invalid rollup id."""

    __slots__ = ("_first_leaf", "_first_tx", "_index", "slices", "tree")

    def __init__(self, slices: Iterable[tuple[int, Sequence[bytes]]]) -> None:
        self.slices: Slices = tuple((rid, tuple(payloads)) for rid, payloads in slices)
        self._index: dict[int, int] = {}
        self._first_tx: list[int] = []  # tree-order position of each slice's first transaction
        self._first_leaf: list[int] = []  # leaf index of each slice's first chunk
        txs = leaves = 0
        for k, (rid, payloads) in enumerate(self.slices):
            if not payloads:
                raise ValueError(f"the slice of rollup {rid} is empty")
            if k and rid <= self.slices[k - 1][0]:
                raise ValueError(f"rollup {rid} after {self.slices[k - 1][0]}: slices must ascend")
            self._index[rid] = k
            self._first_tx.append(txs)
            self._first_leaf.append(leaves)
            txs += len(payloads)
            leaves += chunk_count(len(payloads))
        self.tree = NamespacedMerkleTree(block_leaves(self.slices), keep_data=False)  # the slices hold the data

    @property
    def root(self) -> bytes:
        return self.tree.root

    @property
    def tx_count(self) -> int:
        return self._first_tx[-1] + len(self.slices[-1][1]) if self.slices else 0

    @property
    def chunk_count(self) -> int:
        """The number of NMT leaves (chunks), not transactions."""
        return len(self.tree)

    def payloads(self, rollup_id: int) -> tuple[bytes, ...]:
        """The rollup's transactions in this block, in block order (empty if it has none)."""
        k = self._index.get(rollup_id)
        return () if k is None else self.slices[k][1]

    def prove_slice(self, rollup_id: int, height: int, commit: CommitProof) -> SliceProof:
        """Its slice with an inclusion-and-completeness proof, or an absence proof when empty."""
        return SliceProof(rollup_id, height, self.payloads(rollup_id), commit, self.tree.prove_namespace(rollup_id))

    def _place(self, position: int) -> tuple[int, int, int]:
        """``(slice index, leaf index, offset in the chunk)`` of a tree-order position."""
        if not 0 <= position < self.tx_count:
            raise ValueError(f"position {position} outside [0, {self.tx_count})")
        k = bisect_right(self._first_tx, position) - 1
        chunk, offset = locate(position - self._first_tx[k])
        return k, self._first_leaf[k] + chunk, offset

    def prove_bundle(self, positions: Sequence[int], height: int, commit: CommitProof) -> BundleProof:
        """The bundle whose transactions are at ``positions`` (tree order, in bundle order), proven.

        Raises ``ValueError`` for a position outside the block or one given twice."""
        if len(set(positions)) != len(positions):
            raise ValueError("a bundle transaction is at one position only")
        txs: list[Transaction] = []
        locations: list[tuple[int, int]] = []
        chunk_of: dict[int, tuple[int, int]] = {}  # leaf index -> (slice index, chunk index in slice)
        for position in positions:
            k, leaf, offset = self._place(position)
            rid, payloads = self.slices[k]
            txs.append(Transaction(rid, payloads[position - self._first_tx[k]]))
            locations.append((leaf, offset))
            chunk_of[leaf] = (k, leaf - self._first_leaf[k])
        indices = sorted(chunk_of)
        chunks = tuple(self.slices[k][1][c * CHUNK_TXS:(c + 1) * CHUNK_TXS]
                       for k, c in (chunk_of[leaf] for leaf in indices))
        return BundleProof(Bundle(tuple(txs)), height, tuple(locations), chunks, commit,
                           self.tree.prove_leaves(indices))
