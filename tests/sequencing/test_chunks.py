"""NMT leaves are chunks of a rollup's slice (rollup/chunks.py)."""

import pytest

from consensus.commit_proof import CommitProof
from consensus.encoding import pack, unpack
from consensus.messages import genesis_qc
from sequencing.rollup.block_tree import BlockTree
from sequencing.rollup.chunks import CHUNK_TXS, block_leaves, chunk_count, locate, slice_leaves


def test_a_slice_is_cut_into_chunks_of_at_most_chunk_txs_payloads_in_order() -> None:
    payloads = [bytes([i % 251]) * (1 + i % 7) for i in range(2 * CHUNK_TXS + 5)]
    leaves = slice_leaves(7, payloads)
    assert [ns for ns, _ in leaves] == [7, 7, 7] == [7] * chunk_count(len(payloads))
    chunks = [unpack(data, max_size=1 << 20) for _, data in leaves]
    assert [len(c) for c in chunks] == [CHUNK_TXS, CHUNK_TXS, 5]
    assert [p for c in chunks for p in c] == payloads
    assert leaves[0][1] == pack(payloads[:CHUNK_TXS])


@pytest.mark.parametrize("sizes", [
    [1, 255, 256, 65535, 65536, 70_000],  # every msgpack bin header: 8, 16 and 32-bit lengths
    [2000] * (CHUNK_TXS + 3),  # chunks larger than the packer's first buffer
    [256] * (3 * CHUNK_TXS),
])
def test_chunks_are_packed_exactly_as_the_canonical_encoding(sizes: list[int]) -> None:
    """Catches: the reused packer giving other bytes than ``pack(list(chunk))`` (the leaf data
    that PROTOCOL.md section 13 hashes), e.g. for a tuple, a large payload, a grown buffer."""
    payloads = [bytes([i % 256]) * size for i, size in enumerate(sizes)]
    expected = [(3, pack(payloads[k:k + CHUNK_TXS])) for k in range(0, len(payloads), CHUNK_TXS)]
    assert slice_leaves(3, payloads) == expected
    assert slice_leaves(3, tuple(payloads)) == expected


def test_locate_names_the_chunk_and_offset_of_every_position() -> None:
    payloads = [i.to_bytes(4, "big") for i in range(3 * CHUNK_TXS + 1)]
    chunks = [unpack(data, max_size=1 << 20) for _, data in slice_leaves(1, payloads)]
    for position, payload in enumerate(payloads):
        chunk, offset = locate(position)
        assert chunks[chunk][offset] == payload


def test_block_leaves_follow_the_slices_and_empty_slices_give_none() -> None:
    slices = [(1, [b"a"] * (CHUNK_TXS + 1)), (2, []), (5, [b"b"])]
    assert [ns for ns, _ in block_leaves(slices)] == [1, 1, 5]
    assert block_leaves([]) == []


def test_block_tree_places_every_position_in_its_chunk() -> None:
    """BlockTree (the prover) maps a tree-order position to (leaf, offset) consistently with the leaves."""
    slices = [(1, [b"a%d" % i for i in range(CHUNK_TXS + 2)]), (4, [b"b"]), (6, [b"c%d" % i for i in range(CHUNK_TXS)])]
    tree = BlockTree(slices)
    assert tree.tx_count == 2 * CHUNK_TXS + 3 and tree.chunk_count == 4
    assert tree.payloads(4) == (b"b",) and tree.payloads(5) == ()
    leaves = block_leaves(slices)
    flat = [(r, p) for r, ps in slices for p in ps]
    commit = CommitProof((), genesis_qc("x"))  # not verified here
    for position in range(len(flat)):
        other = (position + 1) % len(flat)
        proof = tree.prove_bundle((position, other), 1, commit)
        leaf, offset = proof.locations[0]
        assert unpack(leaves[leaf][1], max_size=1 << 20)[offset] == flat[position][1]
        assert (proof.bundle.txs[0].rollup_id, proof.bundle.txs[0].payload) == flat[position] == (
            leaves[leaf][0], flat[position][1])


def test_block_tree_refuses_bad_slices_and_positions() -> None:
    for bad in ([(2, [b"x"]), (1, [b"y"])], [(1, [b"x"]), (1, [b"y"])], [(1, [])]):
        with pytest.raises(ValueError):
            BlockTree(bad)
    tree = BlockTree([(1, [b"x", b"y"])])
    commit = CommitProof((), genesis_qc("x"))
    for positions in ((0, 2), (0, -1), (1, 1)):
        with pytest.raises(ValueError):
            tree.prove_bundle(positions, 1, commit)
