"""The leaves of a block's namespaced Merkle tree: each rollup's slice cut into chunks.

A committed block's transactions, grouped by rollup (ascending rollup ids; block order inside a
rollup), are the block's *slices*. The NMT does not take one leaf per transaction (one Python call
and one hash per transaction at every replica) but one leaf per *chunk*: the slice of rollup ``r``
with payloads ``p_0 .. p_{m-1}`` gives the leaves::

    (r, pack([p_{kC}, ..., p_{min(kC + C, m) - 1}]))      for k = 0 .. ceil(m / C) - 1

where ``C`` is :data:`CHUNK_TXS` and ``pack`` the canonical msgpack encoding. Hashing is then
proportional to bytes, and a proof about one rollup carries that rollup's chunks, which the
verifier re-packs from the transactions it is given. The transaction at position ``i`` of a slice
is entry ``i % C`` of that slice's chunk ``i // C`` (:func:`locate`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from consensus.encoding import pack

CHUNK_TXS = 64

Slice = tuple[int, Sequence[bytes]]  # (rollup id, payloads in block order)
Slices = tuple[tuple[int, tuple[bytes, ...]], ...]  # a block's slices as kept: ascending ids, none empty
Leaf = tuple[int, bytes]  # (namespace = rollup id, leaf data = pack(chunk of payloads))


def slice_leaves(rollup_id: int, payloads: Sequence[bytes]) -> list[Leaf]:
    """The leaves of one rollup's slice (none for an empty slice). A slice of a tuple packs as the
    list (``pack`` keeps its Packer: no buffer made per chunk)."""
    return [(rollup_id, pack(payloads[k:k + CHUNK_TXS])) for k in range(0, len(payloads), CHUNK_TXS)]


def block_leaves(slices: Iterable[Slice]) -> list[Leaf]:
    """The leaves of a block, from its slices in ascending rollup order."""
    leaves: list[Leaf] = []
    for rollup_id, payloads in slices:
        leaves.extend(slice_leaves(rollup_id, payloads))
    return leaves


def chunk_count(tx_count: int) -> int:
    """How many leaves a slice of ``tx_count`` transactions has."""
    return -(-tx_count // CHUNK_TXS)


def locate(position: int) -> tuple[int, int]:
    """``(chunk index within the slice, offset within the chunk)`` of a slice position."""
    return divmod(position, CHUNK_TXS)
