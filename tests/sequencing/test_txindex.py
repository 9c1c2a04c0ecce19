"""storage/txindex.prefix_rows (numpy) writes the same bytes as the pure-Python function it replaced,
so ledgers written before stay readable and two replicas, whichever version, write the same rows."""

from __future__ import annotations

import random
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable

import pytest

from sequencing.storage import txindex
from sequencing.storage.txindex import BUCKETS, PREFIX_SIZE, TX_ID_SIZE, PrefixRow, prefix_rows

_SHIFT = 64 - txindex.BUCKET_BITS


def reference_rows(blocks: Iterable[tuple[int, bytes]], first_height: int, last_height: int) -> list[PrefixRow]:
    """prefix_rows as it was (schema version 3 as first shipped): the format's definition."""
    words = array("Q")
    for _, ids in blocks:
        words.frombytes(ids)
    if sys.byteorder == "big":
        words.byteswap()
    prefixes = words[::TX_ID_SIZE // PREFIX_SIZE].tolist()
    prefixes.sort()
    cuts = [0, *(bisect_left(prefixes, b << _SHIFT) for b in range(1, BUCKETS)), len(prefixes)]
    words = array("Q", prefixes)
    if sys.byteorder == "big":
        words.byteswap()
    blob = words.tobytes()
    return [
        (b, last_height, first_height, blob[PREFIX_SIZE * cuts[b]:PREFIX_SIZE * cuts[b + 1]])
        for b in range(BUCKETS) if cuts[b] < cuts[b + 1]
    ]


def _id(rng: random.Random, prefix: int | None = None) -> bytes:
    """A random 32-byte id; ``prefix`` (an int) fixes its first 8 bytes, read little-endian."""
    head = rng.randbytes(8) if prefix is None else prefix.to_bytes(8, "little")
    return head + rng.randbytes(24)


EDGES = [0, 1, (1 << _SHIFT) - 1, 1 << _SHIFT, (1 << _SHIFT) + 1, (BUCKETS - 1) << _SHIFT,
         (1 << 63) - 1, 1 << 63, (1 << 64) - 1]


@pytest.mark.parametrize("seed", range(6))
def test_prefix_rows_match_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    blocks: list[tuple[int, bytes]] = []
    height = rng.randrange(1, 1000)
    for _ in range(rng.randrange(1, 40)):
        height += rng.randrange(1, 4)
        ids = [_id(rng) for _ in range(rng.randrange(1, 300))]
        # bucket edges, the sign bit, and duplicates (an id committed twice, two ids sharing a prefix)
        ids += [_id(rng, rng.choice(EDGES)) for _ in range(rng.randrange(0, 4))]
        if rng.random() < 0.5 and blocks:
            ids.append(blocks[-1][1][:TX_ID_SIZE])
        blocks.append((height, b"".join(ids)))
    first = blocks[0][0] - rng.randrange(0, 3)
    got = prefix_rows(blocks, first, height)
    assert got == reference_rows(blocks, first, height)
    assert len(got) > 1 and all(type(b) is int and type(row) is bytes for b, _, _, row in got)


def test_prefix_rows_of_one_bucket_and_of_nothing() -> None:
    rng = random.Random(7)
    ids = b"".join(_id(rng, (5 << _SHIFT) + rng.randrange(1 << _SHIFT)) for _ in range(50))
    assert prefix_rows([(3, ids)], 1, 4) == reference_rows([(3, ids)], 1, 4)
    assert [b for b, *_ in prefix_rows([(3, ids)], 1, 4)] == [5]
    assert prefix_rows([], 1, 4) == reference_rows([], 1, 4) == []


def test_prefix_rows_read_the_prefix_little_endian() -> None:
    """Bucket and order come from the prefix read little-endian: the byte order the file defines."""
    low_first = bytes([0xFF]) + bytes(7) + bytes(24)  # 0xFF as the LOW byte: bucket 0
    high_first = bytes(7) + bytes([0x01]) + bytes(24)  # 0x01 as the HIGH byte: 1 << 56, bucket 4
    low_too = bytes([0x01]) + bytes(7) + bytes(24)  # 1 sorts before 0xFF
    rows = prefix_rows([(1, high_first + low_first), (2, low_too)], 1, 2)
    assert rows == [(0, 2, 1, low_too[:8] + low_first[:8]), (1 << 56 >> _SHIFT, 2, 1, high_first[:8])]
