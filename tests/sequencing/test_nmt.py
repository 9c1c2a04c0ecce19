"""Namespaced Merkle tree: roots, namespace (inclusion/completeness/absence) and multi proofs."""

from __future__ import annotations

import itertools
import json
import random
import time
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from seq_helpers import reference_data_root

from consensus.errors import DecodeError
from sequencing.rollup.nmt import (
    EMPTY_ROOT,
    MAX_LEAVES,
    MAX_MULTIPROOF_NODES,
    MAX_NAMESPACE,
    MultiProof,
    NamespacedMerkleTree,
    NamespaceProof,
    Node,
    ProofError,
    data_root,
    group_by_namespace,
    inner_node,
)

Leaf = tuple[int, bytes]

# -- an independent reference, written from the module docstring: seq_helpers.reference_data_root

ref_root = reference_data_root


# -- strategies ---------------------------------------------------------------------------------

namespace_values = st.one_of(
    st.sampled_from([0, 1, 2, 3, 7, 8, 1000, MAX_NAMESPACE - 1, MAX_NAMESPACE]),
    st.integers(0, MAX_NAMESPACE),
)
data_values = st.one_of(st.sampled_from([b"", b"a", b"b", b"tx"]), st.binary(max_size=12))


@st.composite
def leaf_sets(draw: st.DrawFn, min_size: int = 0, max_size: int = 40) -> list[Leaf]:
    """Sorted leaves over a small namespace pool: empty, one leaf, one namespace, many, duplicates."""
    pool = draw(st.lists(namespace_values, min_size=1, max_size=8, unique=True))
    leaf = st.tuples(st.sampled_from(pool), data_values)
    items = draw(st.lists(leaf, min_size=min_size, max_size=max_size))
    return group_by_namespace(items)


def absent_namespaces(present: list[int]) -> list[int]:
    """Namespaces below, between and above the present ones (and the extremes), all absent."""
    cands = {0, 1, MAX_NAMESPACE - 1, MAX_NAMESPACE}
    if present:
        cands |= {present[0] - 1, present[-1] + 1}
        for a, b in itertools.pairwise(present):
            cands |= {a + 1, b - 1, (a + b) // 2}
    else:
        cands |= {5, 1 << 20}
    have = set(present)
    return sorted(c for c in cands if 0 <= c <= MAX_NAMESPACE and c not in have)


def rejects(proof: NamespaceProof, root: bytes, namespace: int, datas: list[bytes]) -> None:
    with pytest.raises(ProofError):
        proof.verify(root, namespace, datas)


class BrokenNamespaceProof(NamespaceProof):
    """A verifier that skips the namespace-range completeness check (the bug the teeth look for)."""

    def _check_completeness(self, namespace: int, left: list[Node], right: list[Node]) -> None:
        return None


def broken(proof: NamespaceProof) -> BrokenNamespaceProof:
    return BrokenNamespaceProof(proof.namespace, proof.total, proof.start, proof.end, proof.nodes)


# -- build ----------------------------------------------------------------------------------------


@given(leaf_sets(max_size=70))
def test_root_matches_reference_and_is_deterministic(leaves: list[Leaf]) -> None:
    tree = NamespacedMerkleTree(leaves)
    assert tree.root == ref_root(leaves) == data_root(leaves) == data_root(list(leaves))
    assert len(tree.root) == 32 and len(tree) == len(leaves)


def test_known_answers() -> None:
    assert EMPTY_ROOT == data_root([]) == ref_root([])
    assert EMPTY_ROOT.hex() == "a9350573f26857849b9fd3f517eeb5bd612ffb43782a1f070178474279455733"
    assert data_root([(1, b"a"), (1, b"b"), (7, b"c")]).hex() == (
        "cedbf3d886d92bcd0af5c910454daef71be6779751c76a9fc2e053d748bbf67b"
    )


@given(leaf_sets(min_size=2), st.data())
def test_order_within_a_namespace_changes_the_root(leaves: list[Leaf], data: st.DataObject) -> None:
    tree = NamespacedMerkleTree(leaves)
    ns = data.draw(st.sampled_from(tree.namespaces()))
    start, end = tree.namespace_range(ns)
    datas = tree.leaves_of(ns)
    perm = data.draw(st.permutations(datas))
    assume(perm != datas)
    reordered = leaves[:start] + [(ns, d) for d in perm] + leaves[end:]
    assert data_root(reordered) != tree.root


@given(leaf_sets(min_size=1))
def test_root_commits_to_each_leaf_and_count(leaves: list[Leaf]) -> None:
    root = data_root(leaves)
    assert data_root(leaves[:-1]) != root
    ns, d = leaves[-1]
    assert data_root([*leaves[:-1], (ns, d + b"!")]) != root
    if ns < MAX_NAMESPACE:
        assert data_root([*leaves[:-1], (ns + 1, d)]) != root


def test_group_by_namespace_is_stable() -> None:
    txs = [(3, b"x"), (1, b"a"), (3, b"y"), (1, b"b"), (2, b"c")]
    assert group_by_namespace(txs) == [(1, b"a"), (1, b"b"), (2, b"c"), (3, b"x"), (3, b"y")]


@pytest.mark.parametrize(
    ("leaves", "error"),
    [
        ([(2, b"a"), (1, b"b")], ValueError),
        ([(-1, b"a")], ValueError),
        ([(MAX_NAMESPACE + 1, b"a")], ValueError),
        ([(True, b"a")], TypeError),
        ([(1, "a")], TypeError),
        ([(1, bytearray(b"a"))], TypeError),
        ([[1, b"a"]], TypeError),
        ([(1, b"a", b"b")], TypeError),
    ],
)
def test_bad_leaves_are_refused(leaves: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        NamespacedMerkleTree(leaves)


def test_too_many_leaves_are_refused() -> None:
    with pytest.raises(ValueError):
        NamespacedMerkleTree([(0, b"")] * (MAX_LEAVES + 1))


# -- namespace proofs: completeness and absence -----------------------------------------------


@given(leaf_sets())
def test_every_present_and_absent_namespace_verifies(leaves: list[Leaf]) -> None:
    tree = NamespacedMerkleTree(leaves)
    present = tree.namespaces()
    assert present == sorted({ns for ns, _ in leaves})
    for ns in present:
        proof = tree.prove_namespace(ns)
        assert not proof.is_absence
        assert tree.leaves_of(ns) == [d for n, d in leaves if n == ns]
        proof.verify(tree.root, ns, tree.leaves_of(ns))
        assert len(proof.nodes) <= 2 * max(1, (len(leaves) - 1).bit_length())
    for ns in absent_namespaces(present):
        proof = tree.prove_namespace(ns)
        assert proof.is_absence and tree.leaves_of(ns) == []
        proof.verify(tree.root, ns, [])
        assert len(proof.nodes) <= max(1, (len(leaves) - 1).bit_length() + 1)


def test_absence_in_the_empty_tree() -> None:
    tree = NamespacedMerkleTree([])
    proof = tree.prove_namespace(42)
    assert proof == NamespaceProof(42, 0, 0, 0, ())
    proof.verify(EMPTY_ROOT, 42, [])
    rejects(proof, data_root([(42, b"x")]), 42, [])
    rejects(proof, EMPTY_ROOT, 42, [b"x"])


def test_prove_namespace_refuses_out_of_range() -> None:
    tree = NamespacedMerkleTree([(1, b"a")])
    for bad in (-1, MAX_NAMESPACE + 1, True):
        with pytest.raises(ValueError):
            tree.prove_namespace(bad)


MUTATIONS = [
    "remove", "add", "modify", "reorder", "foreign_data", "foreign_range", "other_namespace",
    "relabel", "tamper_digest", "tamper_range", "extra_node", "drop_node", "total", "shift",
    "as_absence", "absence_at", "other_root",
]


@given(leaf_sets(min_size=1), st.sampled_from(MUTATIONS), st.data())
def test_slice_mutations_are_rejected(leaves: list[Leaf], mutation: str, data: st.DataObject) -> None:
    tree = NamespacedMerkleTree(leaves)
    n = len(tree)
    ns = data.draw(st.sampled_from(tree.namespaces()))
    start, end = tree.namespace_range(ns)
    datas = tree.leaves_of(ns)
    proof = tree.prove_namespace(ns)
    proof.verify(tree.root, ns, datas)
    root = tree.root
    if mutation == "remove":
        i = data.draw(st.integers(0, len(datas) - 1))
        rejects(proof, root, ns, datas[:i] + datas[i + 1:])
    elif mutation == "add":
        i = data.draw(st.integers(0, len(datas)))
        rejects(proof, root, ns, [*datas[:i], data.draw(data_values), *datas[i:]])
    elif mutation == "modify":
        i = data.draw(st.integers(0, len(datas) - 1))
        new = data.draw(data_values.filter(lambda d: d != datas[i]))
        rejects(proof, root, ns, [*datas[:i], new, *datas[i + 1:]])
    elif mutation == "reorder":
        perm = data.draw(st.permutations(datas))
        assume(perm != datas)
        rejects(proof, root, ns, perm)
    elif mutation in ("foreign_data", "foreign_range"):
        # a neighbouring leaf of another namespace smuggled into the slice
        neighbours = [i for i in (start - 1, end) if 0 <= i < n]
        assume(neighbours)
        i = data.draw(st.sampled_from(neighbours))
        foreign = tree.leaf(i)[1]
        extended = [foreign, *datas] if i < start else [*datas, foreign]
        if mutation == "foreign_data":
            rejects(proof, root, ns, extended)
        else:
            lo, hi = (i, end) if i < start else (start, i + 1)
            rejects(tree._range_proof(ns, lo, hi), root, ns, extended)
    elif mutation == "other_namespace":
        other = data.draw(namespace_values.filter(lambda x: x != ns))
        rejects(proof, root, other, datas)
    elif mutation == "relabel":
        other = data.draw(namespace_values.filter(lambda x: x != ns))
        rejects(replace(proof, namespace=other), root, other, datas)
    elif mutation in ("tamper_digest", "tamper_range"):
        assume(proof.nodes)
        k = data.draw(st.integers(0, len(proof.nodes) - 1))
        node = proof.nodes[k]
        if mutation == "tamper_digest":
            bit = data.draw(st.integers(0, 255))
            dig = bytearray(node.digest)
            dig[bit // 8] ^= 1 << (bit % 8)
            bad = Node(node.min_ns, node.max_ns, bytes(dig))
        else:
            lo = data.draw(st.integers(0, MAX_NAMESPACE))
            hi = data.draw(st.integers(lo, MAX_NAMESPACE))
            assume((lo, hi) != (node.min_ns, node.max_ns))
            bad = Node(lo, hi, node.digest)
        nodes = (*proof.nodes[:k], bad, *proof.nodes[k + 1:])
        rejects(replace(proof, nodes=nodes), root, ns, datas)
    elif mutation == "extra_node":
        k = data.draw(st.integers(0, len(proof.nodes)))
        extra = data.draw(st.sampled_from([*proof.nodes, tree.root_node, Node(0, 0, b"\0" * 32)]))
        rejects(replace(proof, nodes=(*proof.nodes[:k], extra, *proof.nodes[k:])), root, ns, datas)
    elif mutation == "drop_node":
        assume(proof.nodes)
        k = data.draw(st.integers(0, len(proof.nodes) - 1))
        rejects(replace(proof, nodes=proof.nodes[:k] + proof.nodes[k + 1:]), root, ns, datas)
    elif mutation == "total":
        total = data.draw(st.integers(end, MAX_LEAVES).filter(lambda t: t != n))
        rejects(replace(proof, total=total), root, ns, datas)
    elif mutation == "shift":
        d = data.draw(st.integers(-start, n - end).filter(lambda x: x != 0))
        rejects(replace(proof, start=start + d, end=end + d), root, ns, datas)
    elif mutation == "as_absence":
        rejects(proof, root, ns, [])
    elif mutation == "absence_at":
        # whatever position an absence proof for a present namespace claims, it fails
        for p in range(n + 1):
            rejects(tree._range_proof(ns, p, p), root, ns, [])
    elif mutation == "other_root":
        other_leaves = data.draw(leaf_sets())
        assume(other_leaves != leaves)
        rejects(proof, data_root(other_leaves), ns, datas)


ABSENT_MUTATIONS = ["as_inclusion", "tamper_digest", "tamper_range", "total", "shift", "other_root"]


@given(leaf_sets(), st.sampled_from(ABSENT_MUTATIONS), st.data())
def test_absence_mutations_are_rejected(leaves: list[Leaf], mutation: str, data: st.DataObject) -> None:
    tree = NamespacedMerkleTree(leaves)
    n = len(tree)
    ns = data.draw(st.sampled_from(absent_namespaces(tree.namespaces())))
    proof = tree.prove_namespace(ns)
    root = tree.root
    proof.verify(root, ns, [])
    if mutation == "as_inclusion":
        rejects(proof, root, ns, [data.draw(data_values)])
        # and an inclusion proof of a present namespace relabelled as this one
        if n:
            present = data.draw(st.sampled_from(tree.namespaces()))
            inclusion = replace(tree.prove_namespace(present), namespace=ns)
            rejects(inclusion, root, ns, [])
            rejects(inclusion, root, ns, tree.leaves_of(present))
    elif mutation in ("tamper_digest", "tamper_range"):
        assume(proof.nodes)
        k = data.draw(st.integers(0, len(proof.nodes) - 1))
        node = proof.nodes[k]
        if mutation == "tamper_digest":
            bad = Node(node.min_ns, node.max_ns, bytes([node.digest[0] ^ 1]) + node.digest[1:])
        else:
            lo = data.draw(st.integers(0, MAX_NAMESPACE))
            hi = data.draw(st.integers(lo, MAX_NAMESPACE))
            assume((lo, hi) != (node.min_ns, node.max_ns))
            bad = Node(lo, hi, node.digest)
        rejects(replace(proof, nodes=(*proof.nodes[:k], bad, *proof.nodes[k + 1:])), root, ns, [])
    elif mutation == "total":
        total = data.draw(st.integers(proof.end, MAX_LEAVES).filter(lambda t: t != n))
        rejects(replace(proof, total=total), root, ns, [])
    elif mutation == "shift":
        p = data.draw(st.integers(0, n).filter(lambda x: x != proof.start))
        rejects(replace(proof, start=p, end=p), root, ns, [])
        rejects(tree._range_proof(ns, p, p), root, ns, [])
    elif mutation == "other_root":
        other = data.draw(leaf_sets())
        assume(other != leaves)
        # only a wrong claim must fail: ns may be absent from `other` at the same position
        assume(ns in {x for x, _ in other})
        rejects(proof, data_root(other), ns, [])


def test_absence_proof_names_its_namespace() -> None:
    tree = NamespacedMerkleTree([(1, b"a"), (9, b"b")])
    proof = tree.prove_namespace(4)
    assert proof.start == proof.end == 1
    rejects(proof, tree.root, 5, [])  # 5 is absent too, but this proof is about 4
    replace(proof, namespace=5).verify(tree.root, 5, [])


def test_nodes_join_only_in_namespace_order() -> None:
    low, high = Node(1, 2, b"\1" * 32), Node(3, 4, b"\2" * 32)
    assert inner_node(low, high)[:2] == (1, 4)
    with pytest.raises(ProofError):
        inner_node(high, low)


def test_proof_constructors_check_shape() -> None:
    node = Node(0, 0, b"\0" * 32)
    bad_nodes: list[Any] = [(node,) * 41, [node], ((0, 0, b"x"),), (Node(2, 1, b"\0" * 32),)]
    for nodes in bad_nodes:
        with pytest.raises(DecodeError):
            NamespaceProof(1, 1, 0, 1, nodes)
    bad_multi: list[tuple[Any, Any]] = [
        ((0,), (node,) * (MAX_MULTIPROOF_NODES + 1)), ([0], ()), ((1, 1), ()), ((), ()),
    ]
    for indices, mnodes in bad_multi:
        with pytest.raises(DecodeError):
            MultiProof(2, indices, mnodes)


def test_verify_rejects_malformed_arguments() -> None:
    tree = NamespacedMerkleTree([(1, b"a"), (2, b"b")])
    proof = tree.prove_namespace(1)
    rejects(proof, tree.root[:31], 1, [b"a"])
    rejects(proof, tree.root, 1, ["a"])  # type: ignore[list-item]
    with pytest.raises(ProofError):
        proof.verify(tree.root, MAX_NAMESPACE + 1, [b"a"])


# -- teeth: the tests can tell a verifier without the completeness check ---------------------


def test_teeth_boundary_drop_fixed_example() -> None:
    leaves = [(1, b"a"), (2, b"x"), (2, b"y"), (2, b"z"), (3, b"b")]
    tree = NamespacedMerkleTree(leaves)
    for lo, hi in ((2, 4), (1, 3)):  # first leaf of namespace 2 dropped; last one dropped
        cheat = tree._range_proof(2, lo, hi)
        datas = [d for _, d in leaves[lo:hi]]
        broken(cheat).verify(tree.root, 2, datas)  # the hashes alone are fine
        rejects(cheat, tree.root, 2, datas)


@given(leaf_sets(min_size=1), st.data())
def test_teeth_boundary_drop(leaves: list[Leaf], data: st.DataObject) -> None:
    tree = NamespacedMerkleTree(leaves)
    ns = data.draw(st.sampled_from(tree.namespaces()))
    start, end = tree.namespace_range(ns)
    datas = tree.leaves_of(ns)
    honest = tree.prove_namespace(ns)
    broken(honest).verify(tree.root, ns, datas)
    for lo, hi, kept in ((start + 1, end, datas[1:]), (start, end - 1, datas[:-1])):
        cheat = tree._range_proof(ns, lo, hi)
        broken(cheat).verify(tree.root, ns, kept)
        rejects(cheat, tree.root, ns, kept)
    # the same broken verifier also believes an absence proof for a present namespace
    broken(tree._range_proof(ns, start, start)).verify(tree.root, ns, [])
    rejects(tree._range_proof(ns, start, start), tree.root, ns, [])


# -- multi proofs (bundles) ---------------------------------------------------------------------


@given(leaf_sets(min_size=1), st.data())
def test_multiproof_verifies_and_rejects_mutations(leaves: list[Leaf], data: st.DataObject) -> None:
    tree = NamespacedMerkleTree(leaves)
    n = len(tree)
    indices = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=8))
    proof = tree.prove_leaves(indices)
    assert proof.indices == tuple(sorted(set(indices)))
    given_leaves = [tree.leaf(i) for i in proof.indices]
    root = tree.root
    proof.verify(root, given_leaves)

    def bad(p: MultiProof, claimed: list[Leaf]) -> None:
        with pytest.raises(ProofError):
            p.verify(root, claimed)

    k = data.draw(st.integers(0, len(given_leaves) - 1))
    ns, d = given_leaves[k]
    new_d = data.draw(data_values.filter(lambda x: x != d))
    bad(proof, [*given_leaves[:k], (ns, new_d), *given_leaves[k + 1:]])
    new_ns = data.draw(namespace_values.filter(lambda x: x != ns))
    bad(proof, [*given_leaves[:k], (new_ns, d), *given_leaves[k + 1:]])
    bad(proof, given_leaves[:k] + given_leaves[k + 1:])
    bad(proof, [*given_leaves, (ns, d)])
    if len(set(given_leaves)) > 1:
        perm = data.draw(st.permutations(given_leaves))
        if perm != given_leaves:
            bad(proof, perm)
    if proof.nodes:
        j = data.draw(st.integers(0, len(proof.nodes) - 1))
        node = proof.nodes[j]
        tampered = Node(node.min_ns, node.max_ns, bytes([node.digest[0] ^ 0x80]) + node.digest[1:])
        bad(replace(proof, nodes=(*proof.nodes[:j], tampered, *proof.nodes[j + 1:])), given_leaves)
    total = data.draw(st.integers(proof.indices[-1] + 1, MAX_LEAVES).filter(lambda t: t != n))
    bad(replace(proof, total=total), given_leaves)
    moved = tuple(sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=len(proof.indices),
                                           max_size=len(proof.indices)))))
    if any(tree.leaf(i) != leaf for i, leaf in zip(moved, given_leaves, strict=True)):
        bad(replace(proof, indices=moved), given_leaves)  # a false claim about positions
    with pytest.raises(ProofError):
        proof.verify(data_root([*leaves, (MAX_NAMESPACE, b"extra")]), given_leaves)


def test_multiproof_refuses_bad_requests() -> None:
    tree = NamespacedMerkleTree([(1, b"a"), (2, b"b")])
    for indices in ([], [2], [-1]):
        with pytest.raises(ValueError):
            tree.prove_leaves(indices)
    with pytest.raises(TypeError):
        tree.prove_leaves([True])
    proof = tree.prove_leaves([0, 1])
    assert proof.nodes == ()
    for claimed in ([(1, b"a"), [2, b"b"]], [(1, b"a"), (2, "b")], [(1, b"a"), (-2, b"b")]):
        with pytest.raises(ProofError):
            proof.verify(tree.root, claimed)  # type: ignore[arg-type]


# -- wire forms -------------------------------------------------------------------------------


@given(leaf_sets(), st.data())
def test_wire_round_trips(leaves: list[Leaf], data: st.DataObject) -> None:
    tree = NamespacedMerkleTree(leaves)
    ns = data.draw(st.sampled_from(tree.namespaces() + absent_namespaces(tree.namespaces())))
    ns_proof = tree.prove_namespace(ns)
    ns_proof.verify(tree.root, ns, tree.leaves_of(ns))
    proofs: list[NamespaceProof | MultiProof] = [ns_proof]
    if leaves:
        proofs.append(tree.prove_leaves(data.draw(st.lists(st.integers(0, len(leaves) - 1), min_size=1))))
    for proof in proofs:
        cls = type(proof)
        assert cls.from_wire(proof.to_wire()) == proof
        assert cls.decode(proof.encode()) == proof
        assert cls.decode(proof.encode()).encode() == proof.encode()
        text = json.dumps(proof.to_json())
        assert cls.from_json(json.loads(text)) == proof


Z = b"\0" * 32
ZH = "00" * 32


@pytest.mark.parametrize(
    "wire",
    [
        None, [], [1, 2, 3, 4], [1, 2, 3, 4, [], 5],
        [True, 1, 0, 1, []], [-1, 1, 0, 1, []], [MAX_NAMESPACE + 1, 1, 0, 1, []],
        [1, MAX_LEAVES + 1, 0, 0, []], [1, 1, 0, 2, []], [1, 2, 2, 1, []],
        [1, 1, 0, 1, [[0, 0, Z[:31]]]], [1, 1, 0, 1, [[5, 4, Z]]], [1, 1, 0, 1, [[0, 0, Z, 1]]],
        [1, 1, 0, 1, [[0, 0, "00" * 32]]], [1, 1, 0, 1, [[0, 0, Z]] * 41], [1, 1, 0, 1, ((0, 0, Z),)],
        [1.0, 1, 0, 1, []],
    ],
)
def test_namespace_proof_wire_is_strict(wire: Any) -> None:
    with pytest.raises(DecodeError):
        NamespaceProof.from_wire(wire)


@pytest.mark.parametrize(
    "wire",
    [
        [0, [0], []], [2, [], []], [2, [1, 0], []], [2, [0, 0], []], [2, [2], []], [2, [-1], []],
        [2, [0], [[0, 0, Z]] * ((1 << 16) + 1)], [2, [0] * 4097, []], [2, [0], [[1, 0, Z]]],
        [2, [False], []], [2, [0]], [2, 0, []],
    ],
)
def test_multiproof_wire_is_strict(wire: Any) -> None:
    with pytest.raises(DecodeError):
        MultiProof.from_wire(wire)


@pytest.mark.parametrize(
    "obj",
    [
        {"namespace": 1, "total": 1, "start": 0, "end": 1, "nodes": [], "x": 1},
        {"namespace": 1, "total": 1, "start": 0, "nodes": []},
        {"namespace": 1, "total": 2, "start": 0, "end": 1, "nodes": [[0, 0, ZH.upper().replace("0", "A")]]},
        {"namespace": 1, "total": 2, "start": 0, "end": 1, "nodes": [[0, 0, "zz" * 32]]},
        {"namespace": 1, "total": 2, "start": 0, "end": 1, "nodes": [[0, 0, ZH[:-2]]]},
        {"namespace": 1, "total": 2, "start": 0, "end": 1, "nodes": [[0, 0, Z]]},
        {"namespace": "1", "total": 1, "start": 0, "end": 1, "nodes": []},
        [1, 1, 0, 1, []],
    ],
)
def test_namespace_proof_json_is_strict(obj: Any) -> None:
    with pytest.raises(DecodeError):
        NamespaceProof.from_json(obj)


def test_multiproof_json_is_strict() -> None:
    good = NamespacedMerkleTree([(1, b"a"), (2, b"b")]).prove_leaves([0]).to_json()
    assert MultiProof.from_json(good).to_json() == good
    for obj in ({**good, "x": 0}, {"total": 2, "indices": [0]}, {**good, "indices": [0.0]}):
        with pytest.raises(DecodeError):
            MultiProof.from_json(obj)


@given(st.binary(max_size=200))
def test_decoding_garbage_raises_only_decode_error(blob: bytes) -> None:
    for cls in (NamespaceProof, MultiProof):
        try:
            cls.decode(blob)
        except DecodeError:
            pass


def test_decode_refuses_oversize() -> None:
    with pytest.raises(DecodeError):
        NamespaceProof.decode(b"\x90" * 10_000)


# -- timing -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("namespaces", [200, 10_000])
def test_timing_10k_leaves(namespaces: int) -> None:
    rng = random.Random(7)
    leaves = group_by_namespace(
        (rng.randrange(namespaces) if namespaces < 10_000 else i, rng.randbytes(rng.randrange(64, 512)))
        for i in range(10_000)
    )
    builds = []
    for _ in range(5):
        t0 = time.perf_counter()
        tree = NamespacedMerkleTree(leaves)
        t1 = time.perf_counter()
        builds.append(t1 - t0)
    builds.sort()
    proofs = [(ns, tree.prove_namespace(ns)) for ns in tree.namespaces()]
    t2 = time.perf_counter()
    for ns, proof in proofs:
        proof.verify(tree.root, ns, tree.leaves_of(ns))
    t3 = time.perf_counter()
    bundle = tree.prove_leaves(rng.sample(range(10_000), 8))
    bundle.verify(tree.root, [tree.leaf(i) for i in bundle.indices])
    print(
        f"\n10k leaves, {len(proofs)} namespaces: build {1e3 * builds[0]:.1f} ms "
        f"(median of 5: {1e3 * builds[2]:.1f} ms), "
        f"prove all {1e3 * (t2 - t1):.1f} ms, verify all {1e3 * (t3 - t2):.1f} ms, "
        f"max proof nodes {max(len(p.nodes) for _, p in proofs)}, 8-leaf bundle {len(bundle.nodes)} nodes"
    )
    assert builds[2] < 1.0  # generous for loaded CI; typically ~30 ms
