"""Namespaced Merkle tree (NMT): the commitment a block header makes to the block's data.

Leaves
    A committed block's transactions, stably grouped by rollup id, are its slices; each slice cut
    into chunks of ``CHUNK_TXS`` payloads gives the leaves ``(namespace, data)`` with ``data`` the
    msgpack of one chunk (:mod:`sequencing.rollup.chunks`). ``namespace`` is the rollup id, an
    integer in ``[0, 2**32 - 1]``, and the sequence is non-decreasing in it. ``n`` leaves,
    ``0 <= n <= MAX_LEAVES`` (2**20). The tree itself treats ``data`` as opaque bytes.

Hashing
    ``H`` is blake2b with a 32-byte digest and personalisation ``b"ordo/nmt/v1"``; ``ns32(x)`` is
    ``x`` as 4 bytes big-endian and ``u64(x)`` 8 bytes big-endian. Every node is a triple
    ``(min_ns, max_ns, digest)``, as in Celestia's NMT::

        leaf(ns, data) = (ns, ns, H(0x00 || ns32(ns) || data))
        inner(L, R)    = (L.min, R.max, H(0x01 || ns32(L.min) || ns32(L.max) || L.digest
                                             || ns32(R.min) || ns32(R.max) || R.digest))
                         defined only when L.max <= R.min (else a verifier raises ProofError)
        data_root      = H(0x02 || u64(n) || ns32(root.min) || ns32(root.max) || root.digest)
        EMPTY_ROOT     = data_root of n = 0, whose root node is (0, 0, 32 zero bytes)

    The prefix bytes separate leaves, inner nodes and the root; the data is the last field of a
    leaf preimage and every other field is fixed-width, so each preimage parses one way only.

Shape
    RFC 6962 section 2.1: the tree over leaves ``[lo, hi)`` with ``m = hi - lo >= 2`` is
    ``inner(tree[lo, lo+k), tree[lo+k, hi))`` for ``k`` the largest power of two ``< m``; a
    single leaf is its own tree. The shape depends on ``n`` alone and has depth
    ``ceil(log2 n) <= 20``. Because ``data_root`` commits to ``n``, it fixes the shape as well.

Range proofs
    To prove leaves ``[s, e)`` (``0 <= s <= e <= n``) walk down from the root: a subtree
    ``[lo, hi)`` disjoint from the range (``hi <= s`` or ``lo >= e``) is *opaque* and its node
    goes into the proof (left to right); a subtree inside the range is rebuilt from the data;
    any other subtree is split. For the empty range ``s = e = p`` only subtrees with
    ``lo < p < hi`` are split, so the opaque nodes are the maximal subtrees wholly left of
    position ``p`` and those wholly right of it. Either way a proof has at most two nodes per
    level, ``<= 2 * 20`` in all. The verifier repeats the same walk with the claimed ``n, s, e``,
    rebuilds the root node from the leaf data and the opaque nodes (consuming all of them, and
    checking ``L.max <= R.min`` at every join), and compares ``data_root``. Since ``data_root``
    binds ``n`` and every inner digest binds both children's ranges and digests, a proof that
    verifies (barring a blake2b collision) shows the honest tree's nodes at exactly those positions:
    the given data are the leaves ``s .. e-1`` with the claimed namespace, and each opaque node is
    the real node, namespace range included, of the subtree it stands for.

Completeness (``NamespaceProof`` for namespace ``N`` with ``s < e``)
    Besides the root check, every leaf in ``[s, e)`` is hashed with namespace ``N``, every opaque
    node left of the range (``hi <= s``) must have ``max_ns < N`` and every one right of it
    (``lo >= e``) ``min_ns > N``. The opaque subtrees and the leaves ``[s, e)`` partition
    ``[0, n)``, and in an honestly built tree a node's ``[min_ns, max_ns]`` contains the namespace of
    every leaf below it. So no leaf outside ``[s, e)`` has namespace ``N``: the data are ALL of
    ``N``'s leaves, in tree order. Dropping a boundary leaf (proving ``[s+1, e)``) leaves that leaf
    inside an opaque node whose range contains ``N``, which the check rejects; an extra or foreign
    leaf changes a leaf digest, hence the root.

Absence (``NamespaceProof`` with ``s = e = p``)
    For an absent ``N`` the prover takes ``p`` = the number of leaves with namespace ``< N`` and
    sends the range proof of the empty range ``[p, p)``; the verifier runs the same check with no
    leaves: every opaque node left of ``p`` has ``max_ns < N``, every one right of it
    ``min_ns > N``. The opaque nodes partition ``[0, n)``, so no leaf has namespace ``N``. This
    one form covers every case: ``N`` below the minimum (``p = 0``: the only node is the root and
    ``root.min > N``), above the maximum (``p = n``: ``root.max < N``), and between two present
    namespaces (the subtrees left of ``p`` end below ``N``, those right of it start above). If ``N``
    is present, then whatever ``p`` a prover picks, a leaf of ``N`` lies in some opaque node whose
    range contains ``N``, and the check fails. The empty tree (``n = 0``) proves every namespace
    absent with no nodes, against ``EMPTY_ROOT``. ``verify`` demands exactly ``e - s`` data, so an
    inclusion proof never passes as absence (``datas == []``) or the reverse.

Trust assumption
    The verifier checks the namespace ranges of opaque nodes only through their hash binding: the
    ranges are as honest as whoever built ``data_root``. In ordo every voter recomputes the root
    from the block payload before voting, so the root of a certified block is honestly built.

Multi proofs (bundles)
    ``MultiProof`` proves the leaves at sorted distinct ``indices`` (any namespaces): subtrees
    containing no index are opaque, indexed leaves are rebuilt from ``(namespace, data)``. It shows
    membership at those positions, not completeness; at most ``len(indices) * 20`` nodes.

Wire forms (canonical msgpack via ``encode``/``decode``; JSON via ``to_json``/``from_json``,
digests as lowercase hex; both strict, raising ``DecodeError``)::

    node            = [min_ns, max_ns, digest(32)]
    NamespaceProof  = [namespace, total, start, end, [node, ...]]        (<= 40 nodes)
    MultiProof      = [total, [index, ...], [node, ...]]   (1..4096 indices, <= 65536 nodes)
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence

from .nmt_proofs import (
    EMPTY_NODE,
    EMPTY_ROOT,
    MAX_LEAVES,
    MAX_MULTIPROOF_INDICES,
    MAX_MULTIPROOF_NODES,
    MAX_NAMESPACE,
    MAX_NAMESPACE_PROOF_NODES,
    MultiProof,
    NamespaceProof,
    Node,
    ProofError,
    inner_node,
    is_namespace,
    leaf_node,
    multi_shape,
    range_shape,
    root_hash,
    split_point,
)

__all__ = [
    "EMPTY_ROOT",
    "MAX_LEAVES",
    "MAX_MULTIPROOF_INDICES",
    "MAX_MULTIPROOF_NODES",
    "MAX_NAMESPACE",
    "MAX_NAMESPACE_PROOF_NODES",
    "MultiProof",
    "NamespaceProof",
    "NamespacedMerkleTree",
    "Node",
    "ProofError",
    "data_root",
    "group_by_namespace",
    "inner_node",
    "is_namespace",
    "leaf_node",
    "root_hash",
    "split_point",
]

Leaf = tuple[int, bytes]


def group_by_namespace(leaves: Iterable[Leaf]) -> list[Leaf]:
    """The leaves stably sorted by namespace: the tree order of a block's transactions."""
    return sorted(leaves, key=lambda leaf: leaf[0])


def _check_leaves(leaves: Sequence[Leaf]) -> None:
    if len(leaves) > MAX_LEAVES:
        raise ValueError(f"{len(leaves)} leaves exceed the limit {MAX_LEAVES}")
    previous = 0
    for i, leaf in enumerate(leaves):
        if not isinstance(leaf, tuple) or len(leaf) != 2:
            raise TypeError(f"leaf {i}: expected a (namespace, data) tuple")
        namespace, data = leaf
        if not isinstance(namespace, int) or isinstance(namespace, bool):
            raise TypeError(f"leaf {i}: namespace must be an int")
        if not isinstance(data, bytes):
            raise TypeError(f"leaf {i}: data must be bytes")
        if not 0 <= namespace <= MAX_NAMESPACE:
            raise ValueError(f"leaf {i}: namespace {namespace} outside [0, 2**32 - 1]")
        if namespace < previous:
            raise ValueError(f"leaf {i}: namespace {namespace} after {previous}; leaves must be sorted")
        previous = namespace


class NamespacedMerkleTree:
    """An NMT built once over sorted leaves, answering many proofs.

    Raises ``TypeError`` for a leaf that is not ``(int, bytes)`` and ``ValueError`` for a namespace
    outside ``[0, 2**32 - 1]``, leaves not sorted by namespace, or more than ``MAX_LEAVES`` leaves.
    """

    __slots__ = ("_leaves", "_levels", "_namespaces", "_ranges", "root", "root_node")

    def __init__(self, leaves: Iterable[Leaf], *, keep_data: bool = True) -> None:
        """``keep_data=False`` keeps the nodes but not the leaf data (:meth:`leaf` and
        :meth:`leaves_of` then raise ``LookupError``): proofs need the nodes only, so a prover that
        holds the data elsewhere (:class:`.block_tree.BlockTree`) does not keep a second copy."""
        items = list(leaves)
        _check_leaves(items)
        self._leaves: list[Leaf] | None = items if keep_data else None
        self._namespaces = [ns for ns, _ in items]
        level = [leaf_node(ns, data) for ns, data in items]
        # Bottom-up pairing with the odd last node promoted builds exactly the RFC 6962 shape;
        # levels[h][j] is the subtree starting at leaf j << h of size at most 1 << h.
        self._levels: list[list[Node]] = [level]
        while len(level) > 1:
            nxt = [inner_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            self._levels.append(nxt)
            level = nxt
        self.root_node: Node = level[0] if level else EMPTY_NODE
        self.root: bytes = root_hash(len(items), self.root_node) if items else EMPTY_ROOT
        self._ranges: dict[int, tuple[int, int]] = {}
        for i, ns in enumerate(self._namespaces):
            start, _ = self._ranges.get(ns, (i, i))
            self._ranges[ns] = (start, i + 1)

    def __len__(self) -> int:
        return len(self._namespaces)

    def _data(self) -> list[Leaf]:
        if self._leaves is None:
            raise LookupError("this tree was built with keep_data=False")
        return self._leaves

    def leaf(self, index: int) -> Leaf:
        return self._data()[index]

    def namespaces(self) -> list[int]:
        """The distinct namespaces present, ascending."""
        return list(self._ranges)

    def namespace_range(self, namespace: int) -> tuple[int, int]:
        """``(start, end)`` of the namespace's leaves; ``start == end`` (its insertion point) if absent."""
        found = self._ranges.get(namespace)
        if found is not None:
            return found
        p = bisect_left(self._namespaces, namespace)
        return p, p

    def leaves_of(self, namespace: int) -> list[bytes]:
        """The data of every leaf of ``namespace``, in tree order (what its proof verifies)."""
        start, end = self.namespace_range(namespace)
        return [data for _, data in self._data()[start:end]]

    def _node(self, lo: int, hi: int) -> Node:
        """The node of the RFC 6962 subtree over leaves ``[lo, hi)`` (must be a subtree of this tree)."""
        h = (hi - lo - 1).bit_length()
        return self._levels[h][lo >> h]

    def prove_namespace(self, namespace: int) -> NamespaceProof:
        """Inclusion-and-completeness proof of ``namespace``'s leaves, or its absence proof.

        Raises ``ValueError`` for a namespace outside ``[0, 2**32 - 1]``.
        """
        if not is_namespace(namespace):
            raise ValueError(f"namespace {namespace!r} outside [0, 2**32 - 1]")
        start, end = self.namespace_range(namespace)
        return self._range_proof(namespace, start, end)

    def _range_proof(self, namespace: int, start: int, end: int) -> NamespaceProof:
        """A proof for an arbitrary range; only complete (verifiable) if it is the namespace's range."""
        nodes = tuple(self._node(lo, hi) for lo, hi in range_shape(len(self), start, end))
        return NamespaceProof(namespace, len(self), start, end, nodes)

    def prove_leaves(self, indices: Iterable[int]) -> MultiProof:
        """Membership proof of the leaves at ``indices`` (deduplicated and sorted in the proof).

        Raises ``ValueError`` if there are none, too many, or one is outside ``[0, len(self))``.
        """
        chosen = sorted(set(indices))
        if any(not isinstance(i, int) or isinstance(i, bool) for i in chosen):
            raise TypeError("leaf indices must be ints")
        if not chosen or len(chosen) > MAX_MULTIPROOF_INDICES:
            raise ValueError(f"a multi proof covers 1 to {MAX_MULTIPROOF_INDICES} leaves")
        if chosen[0] < 0 or chosen[-1] >= len(self):
            raise ValueError(f"leaf index outside [0, {len(self)})")
        nodes = tuple(self._node(lo, hi) for lo, hi in multi_shape(len(self), chosen))
        return MultiProof(len(self), tuple(chosen), nodes)


def data_root(leaves: Iterable[Leaf]) -> bytes:
    """The 32-byte data root over sorted leaves (:data:`EMPTY_ROOT` for none).

    Raises like :class:`NamespacedMerkleTree`.
    """
    return NamespacedMerkleTree(leaves).root
