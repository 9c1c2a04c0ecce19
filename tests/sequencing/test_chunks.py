"""NMT leaves are chunks of a rollup's slice (rollup/chunks.py)."""

from consensus.encoding import pack, unpack
from sequencing.rollup.chunks import CHUNK_TXS, block_leaves, chunk_count, locate, slice_leaves


def test_a_slice_is_cut_into_chunks_of_at_most_chunk_txs_payloads_in_order() -> None:
    payloads = [bytes([i % 251]) * (1 + i % 7) for i in range(2 * CHUNK_TXS + 5)]
    leaves = slice_leaves(7, payloads)
    assert [ns for ns, _ in leaves] == [7, 7, 7] == [7] * chunk_count(len(payloads))
    chunks = [unpack(data, max_size=1 << 20) for _, data in leaves]
    assert [len(c) for c in chunks] == [CHUNK_TXS, CHUNK_TXS, 5]
    assert [p for c in chunks for p in c] == payloads
    assert leaves[0][1] == pack(payloads[:CHUNK_TXS])


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
