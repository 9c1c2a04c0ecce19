"""Namespaced Merkle tree: hashing primitives, proofs and their verification.

This half of the NMT needs no tree: a light client holding only a block's ``data_root`` imports it
to check a :class:`NamespaceProof` (a rollup's slice, or its absence) or a :class:`MultiProof` (a
bundle). The construction and the soundness argument are in :mod:`sequencing.rollup.nmt`.
"""

from __future__ import annotations

import hashlib
import struct
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from consensus.encoding import DIGEST_SIZE, MAX_LIST, expect_bytes, expect_int, expect_list, pack, unpack
from consensus.errors import DecodeError

MAX_NAMESPACE = 2**32 - 1
MAX_LEAVES = 1 << 20
MAX_DEPTH = 20  # ceil(log2(MAX_LEAVES)): the deepest RFC 6962 tree a proof can describe
MAX_NAMESPACE_PROOF_NODES = 2 * MAX_DEPTH
MAX_MULTIPROOF_INDICES = 1 << 12
MAX_MULTIPROOF_NODES = MAX_LIST
MAX_NAMESPACE_PROOF_BYTES = 1 << 13
MAX_MULTIPROOF_BYTES = 4 << 20

PERSON = b"ordo/nmt/v1"
LEAF_PREFIX = 0x00
INNER_PREFIX = 0x01
ROOT_PREFIX = 0x02

_LEAF = struct.Struct(">BI")
_INNER = struct.Struct(">BII32sII32s")
_ROOT = struct.Struct(">BQII32s")


class ProofError(Exception):
    """A proof does not show what its verifier was asked to check (wrong data, root, or proof)."""


class Node(NamedTuple):
    """A tree node: the namespace range of the leaves below it and its digest."""

    min_ns: int
    max_ns: int
    digest: bytes

    def to_wire(self) -> list[Any]:
        return [self.min_ns, self.max_ns, self.digest]

    @classmethod
    def from_wire(cls, wire: Any) -> Node:
        lo, hi, dig = expect_list(wire, "nmt.node", length=3)
        return cls(
            expect_int(lo, "nmt.node.min_ns", hi=MAX_NAMESPACE),
            expect_int(hi, "nmt.node.max_ns", hi=MAX_NAMESPACE),
            expect_bytes(dig, "nmt.node.digest", size=DIGEST_SIZE),
        )


def _blake(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE, person=PERSON).digest()


def leaf_node(namespace: int, data: bytes) -> Node:
    """The node of one leaf: ``(ns, ns, H(0x00 || ns32 || data))``. Arguments are not checked.
    The data (a chunk: ~16 KB) is hashed where it is, not copied behind the prefix first."""
    h = hashlib.blake2b(_LEAF.pack(LEAF_PREFIX, namespace), digest_size=DIGEST_SIZE, person=PERSON)
    h.update(data)
    return Node(namespace, namespace, h.digest())


def inner_node(left: Node, right: Node) -> Node:
    """The parent of two adjacent nodes; raises ProofError unless ``left.max_ns <= right.min_ns``."""
    if left.max_ns > right.min_ns:
        raise ProofError(f"nodes out of namespace order: {left.max_ns} > {right.min_ns}")
    body = _INNER.pack(INNER_PREFIX, left.min_ns, left.max_ns, left.digest,
                       right.min_ns, right.max_ns, right.digest)
    return Node(left.min_ns, right.max_ns, _blake(body))


def root_hash(size: int, root: Node) -> bytes:
    """The 32-byte data root: ``H(0x02 || u64(size) || ns32(min) || ns32(max) || digest)``."""
    return _blake(_ROOT.pack(ROOT_PREFIX, size, root.min_ns, root.max_ns, root.digest))


EMPTY_NODE = Node(0, 0, b"\0" * DIGEST_SIZE)
EMPTY_ROOT = root_hash(0, EMPTY_NODE)


def split_point(size: int) -> int:
    """RFC 6962 split: the largest power of two strictly smaller than ``size`` (``size >= 2``)."""
    return 1 << ((size - 1).bit_length() - 1)


def range_shape(size: int, start: int, end: int) -> list[tuple[int, int]]:
    """The opaque subtrees ``[lo, hi)`` of a proof for leaves ``[start, end)``, left to right.

    A subtree disjoint from the range (``hi <= start`` or ``lo >= end``) is opaque; one inside it
    needs no node; any other is split. For ``start == end`` only subtrees with ``lo < start < hi``
    are split, giving the maximal subtrees left and right of the position ``start``.
    """
    out: list[tuple[int, int]] = []

    def walk(lo: int, hi: int) -> None:
        if hi <= start or lo >= end:
            out.append((lo, hi))
        elif not (start <= lo and hi <= end):
            k = lo + split_point(hi - lo)
            walk(lo, k)
            walk(k, hi)

    if size:
        walk(0, size)
    return out


def multi_shape(size: int, indices: Sequence[int]) -> list[tuple[int, int]]:
    """The opaque subtrees of a proof for the sorted, distinct leaf ``indices``, left to right."""
    out: list[tuple[int, int]] = []

    def walk(lo: int, hi: int) -> None:
        j = bisect_left(indices, lo)
        if j == len(indices) or indices[j] >= hi:
            out.append((lo, hi))
        elif hi - lo > 1:
            k = lo + split_point(hi - lo)
            walk(lo, k)
            walk(k, hi)

    if size:
        walk(0, size)
    return out


class _Fold:
    """Recomputes a root from known leaf nodes and a proof's opaque nodes, in one walk.

    ``is_opaque(lo, hi)`` says which subtrees come from the proof; every other subtree of size one
    is the next known leaf. Opaque nodes are recorded with their ``(lo, hi)`` for range checks.
    """

    def __init__(self, leaves: Sequence[Node], nodes: Sequence[Node]) -> None:
        self.leaves = leaves
        self.nodes = nodes
        self.next_leaf = 0
        self.next_node = 0
        self.opaque: list[tuple[int, int, Node]] = []

    def run(self, size: int, is_opaque: Callable[[int, int], bool]) -> Node:
        def walk(lo: int, hi: int) -> Node:
            if is_opaque(lo, hi):
                if self.next_node == len(self.nodes):
                    raise ProofError("proof has too few nodes")
                node = self.nodes[self.next_node]
                self.next_node += 1
                self.opaque.append((lo, hi, node))
                return node
            if hi - lo == 1:
                if self.next_leaf == len(self.leaves):
                    raise ProofError("proof needs more leaves than were given")
                leaf = self.leaves[self.next_leaf]
                self.next_leaf += 1
                return leaf
            k = lo + split_point(hi - lo)
            return inner_node(walk(lo, k), walk(k, hi))

        root = walk(0, size)
        if self.next_node != len(self.nodes):
            raise ProofError("proof has too many nodes")
        if self.next_leaf != len(self.leaves):
            raise ProofError("proof covers fewer leaves than were given")
        return root


def _check_root(root: Any) -> None:
    if not isinstance(root, bytes) or len(root) != DIGEST_SIZE:
        raise ProofError(f"data root must be {DIGEST_SIZE} bytes")


def is_namespace(value: Any) -> bool:
    """Whether ``value`` is a valid namespace: an int (not a bool) in ``[0, 2**32 - 1]``."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_NAMESPACE


def _check_namespace_arg(namespace: Any) -> None:
    if not is_namespace(namespace):
        raise ProofError(f"namespace {namespace!r} is not an integer in [0, 2**32 - 1]")


def _check_data_arg(data: Any) -> None:
    if not isinstance(data, bytes):
        raise ProofError(f"leaf data must be bytes, got {type(data).__name__}")


def _check_int(value: Any, what: str, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise DecodeError(f"{what}: expected an integer in [{lo}, {hi}], got {value!r}")


def _check_nodes(nodes: Any, what: str, max_len: int) -> None:
    if not isinstance(nodes, tuple) or len(nodes) > max_len:
        raise DecodeError(f"{what}: expected a tuple of at most {max_len} nodes")
    for node in nodes:
        if not isinstance(node, Node):
            raise DecodeError(f"{what}: expected Node items")
        _check_int(node.min_ns, f"{what}.min_ns", 0, MAX_NAMESPACE)
        _check_int(node.max_ns, f"{what}.max_ns", node.min_ns, MAX_NAMESPACE)
        if not isinstance(node.digest, bytes) or len(node.digest) != DIGEST_SIZE:
            raise DecodeError(f"{what}.digest: expected {DIGEST_SIZE} bytes")


# -- JSON helpers (hex for bytes, exact key sets) ----------------------------------------------


def _node_to_json(node: Node) -> list[Any]:
    return [node.min_ns, node.max_ns, node.digest.hex()]


def _node_from_json(value: Any, what: str) -> Node:
    lo, hi, dig = expect_list(value, what, length=3)
    if not isinstance(dig, str) or len(dig) != 2 * DIGEST_SIZE or dig != dig.lower():
        raise DecodeError(f"{what}.digest: expected {2 * DIGEST_SIZE} lowercase hex characters")
    try:
        raw = bytes.fromhex(dig)
    except ValueError:
        raise DecodeError(f"{what}.digest: not hex") from None
    return Node(expect_int(lo, f"{what}.min_ns", hi=MAX_NAMESPACE),
                expect_int(hi, f"{what}.max_ns", hi=MAX_NAMESPACE), raw)


def _expect_keys(obj: Any, what: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(obj, dict) or set(obj) != keys:
        raise DecodeError(f"{what}: expected an object with exactly the keys {sorted(keys)}")
    return obj


@dataclass(frozen=True, slots=True)
class NamespaceProof:
    """Proof that leaves ``[start, end)`` of a ``total``-leaf tree are ALL the leaves of ``namespace``.

    ``start == end`` makes it an absence proof: no leaf has ``namespace`` (``start`` is the number of
    leaves with a smaller namespace). ``nodes`` are the opaque subtrees of :func:`range_shape`.
    """

    namespace: int
    total: int
    start: int
    end: int
    nodes: tuple[Node, ...]

    def __post_init__(self) -> None:
        _check_int(self.namespace, "nmt.namespace_proof.namespace", 0, MAX_NAMESPACE)
        _check_int(self.total, "nmt.namespace_proof.total", 0, MAX_LEAVES)
        _check_int(self.end, "nmt.namespace_proof.end", 0, self.total)
        _check_int(self.start, "nmt.namespace_proof.start", 0, self.end)
        _check_nodes(self.nodes, "nmt.namespace_proof.nodes", MAX_NAMESPACE_PROOF_NODES)

    @property
    def is_absence(self) -> bool:
        return self.start == self.end

    def verify(self, root: bytes, namespace: int, datas: Sequence[bytes]) -> None:
        """Check that ``datas`` (in order) are exactly the leaves of ``namespace`` under ``root``.

        An empty ``datas`` checks absence. Raises :class:`ProofError` on any mismatch.
        """
        _check_root(root)
        _check_namespace_arg(namespace)
        if namespace != self.namespace:
            raise ProofError(f"proof is for namespace {self.namespace}, not {namespace}")
        if len(datas) != self.end - self.start:
            raise ProofError(
                f"proof covers {self.end - self.start} leaves, {len(datas)} were given"
                + (" (an absence proof)" if self.is_absence else "")
            )
        for data in datas:
            _check_data_arg(data)
        if self.total == 0:
            if self.nodes:
                raise ProofError("a proof over the empty tree has no nodes")
            computed = EMPTY_ROOT
        else:
            fold = _Fold([leaf_node(namespace, d) for d in datas], self.nodes)
            start, end = self.start, self.end
            top = fold.run(self.total, lambda lo, hi: hi <= start or lo >= end)
            left = [node for _, hi, node in fold.opaque if hi <= start]
            right = [node for lo, _, node in fold.opaque if lo >= end]
            self._check_completeness(namespace, left, right)
            computed = root_hash(self.total, top)
        if computed != root:
            raise ProofError("proof does not lead to the data root")

    def _check_completeness(self, namespace: int, left: list[Node], right: list[Node]) -> None:
        """Every subtree left of the slice lies below ``namespace``, every one right of it above."""
        for node in left:
            if node.max_ns >= namespace:
                raise ProofError(f"a subtree left of the slice reaches namespace {node.max_ns}")
        for node in right:
            if node.min_ns <= namespace:
                raise ProofError(f"a subtree right of the slice starts at namespace {node.min_ns}")

    # -- wire -------------------------------------------------------------------------------

    def to_wire(self) -> list[Any]:
        return [self.namespace, self.total, self.start, self.end, [n.to_wire() for n in self.nodes]]

    @classmethod
    def from_wire(cls, wire: Any) -> NamespaceProof:
        ns, total, start, end, nodes = expect_list(wire, "nmt.namespace_proof", length=5)
        items = expect_list(nodes, "nmt.namespace_proof.nodes", max_len=MAX_NAMESPACE_PROOF_NODES)
        return cls(
            expect_int(ns, "nmt.namespace_proof.namespace", hi=MAX_NAMESPACE),
            expect_int(total, "nmt.namespace_proof.total", hi=MAX_LEAVES),
            expect_int(start, "nmt.namespace_proof.start", hi=MAX_LEAVES),
            expect_int(end, "nmt.namespace_proof.end", hi=MAX_LEAVES),
            tuple(Node.from_wire(n) for n in items),
        )

    def encode(self) -> bytes:
        return pack(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> NamespaceProof:
        return cls.from_wire(unpack(data, max_size=MAX_NAMESPACE_PROOF_BYTES))

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace, "total": self.total, "start": self.start, "end": self.end,
            "nodes": [_node_to_json(n) for n in self.nodes],
        }

    @classmethod
    def from_json(cls, obj: Any) -> NamespaceProof:
        what = "nmt.namespace_proof"
        d = _expect_keys(obj, what, {"namespace", "total", "start", "end", "nodes"})
        items = expect_list(d["nodes"], f"{what}.nodes", max_len=MAX_NAMESPACE_PROOF_NODES)
        return cls(
            expect_int(d["namespace"], f"{what}.namespace", hi=MAX_NAMESPACE),
            expect_int(d["total"], f"{what}.total", hi=MAX_LEAVES),
            expect_int(d["start"], f"{what}.start", hi=MAX_LEAVES),
            expect_int(d["end"], f"{what}.end", hi=MAX_LEAVES),
            tuple(_node_from_json(n, f"{what}.node") for n in items),
        )


@dataclass(frozen=True, slots=True)
class MultiProof:
    """Proof that the leaves at ``indices`` (sorted, distinct) of a ``total``-leaf tree are given ones.

    Proves membership and position only, not completeness: used for bundles ("every transaction of
    this bundle is in this block"). ``nodes`` are the opaque subtrees of :func:`multi_shape`.
    """

    total: int
    indices: tuple[int, ...]
    nodes: tuple[Node, ...]

    def __post_init__(self) -> None:
        what = "nmt.multiproof"
        _check_int(self.total, f"{what}.total", 1, MAX_LEAVES)
        if not isinstance(self.indices, tuple) or not 1 <= len(self.indices) <= MAX_MULTIPROOF_INDICES:
            raise DecodeError(f"{what}.indices: expected 1 to {MAX_MULTIPROOF_INDICES} indices")
        previous = -1
        for index in self.indices:
            _check_int(index, f"{what}.index", previous + 1, self.total - 1)
            previous = index
        _check_nodes(self.nodes, f"{what}.nodes", MAX_MULTIPROOF_NODES)

    def verify(self, root: bytes, leaves: Sequence[tuple[int, bytes]]) -> None:
        """Check that ``leaves[i]`` = (namespace, data) is the leaf at ``indices[i]`` under ``root``.

        Raises :class:`ProofError` on any mismatch.
        """
        _check_root(root)
        if len(leaves) != len(self.indices):
            raise ProofError(f"proof is for {len(self.indices)} leaves, {len(leaves)} were given")
        nodes = []
        for leaf in leaves:
            if not isinstance(leaf, tuple) or len(leaf) != 2:
                raise ProofError("each leaf must be a (namespace, data) pair")
            namespace, data = leaf
            _check_namespace_arg(namespace)
            _check_data_arg(data)
            nodes.append(leaf_node(namespace, data))
        indices = self.indices

        def is_opaque(lo: int, hi: int) -> bool:
            j = bisect_left(indices, lo)
            return j == len(indices) or indices[j] >= hi

        top = _Fold(nodes, self.nodes).run(self.total, is_opaque)
        if root_hash(self.total, top) != root:
            raise ProofError("proof does not lead to the data root")

    # -- wire -------------------------------------------------------------------------------

    def to_wire(self) -> list[Any]:
        return [self.total, list(self.indices), [n.to_wire() for n in self.nodes]]

    @classmethod
    def from_wire(cls, wire: Any) -> MultiProof:
        total, indices, nodes = expect_list(wire, "nmt.multiproof", length=3)
        idx = expect_list(indices, "nmt.multiproof.indices", max_len=MAX_MULTIPROOF_INDICES)
        items = expect_list(nodes, "nmt.multiproof.nodes", max_len=MAX_MULTIPROOF_NODES)
        return cls(
            expect_int(total, "nmt.multiproof.total", hi=MAX_LEAVES),
            tuple(expect_int(i, "nmt.multiproof.index", hi=MAX_LEAVES) for i in idx),
            tuple(Node.from_wire(n) for n in items),
        )

    def encode(self) -> bytes:
        return pack(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> MultiProof:
        return cls.from_wire(unpack(data, max_size=MAX_MULTIPROOF_BYTES))

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total, "indices": list(self.indices),
            "nodes": [_node_to_json(n) for n in self.nodes],
        }

    @classmethod
    def from_json(cls, obj: Any) -> MultiProof:
        what = "nmt.multiproof"
        d = _expect_keys(obj, what, {"total", "indices", "nodes"})
        idx = expect_list(d["indices"], f"{what}.indices", max_len=MAX_MULTIPROOF_INDICES)
        items = expect_list(d["nodes"], f"{what}.nodes", max_len=MAX_MULTIPROOF_NODES)
        return cls(
            expect_int(d["total"], f"{what}.total", hi=MAX_LEAVES),
            tuple(expect_int(i, f"{what}.index", hi=MAX_LEAVES) for i in idx),
            tuple(_node_from_json(n, f"{what}.node") for n in items),
        )
