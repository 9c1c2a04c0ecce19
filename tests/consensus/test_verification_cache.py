"""The signature memo stays small: it only has to span the few rounds between a vote (or timeout)
and the certificate that repeats its signature, and each entry holds the signed bytes and the
signature (~400 bytes). At the default capacity it used to take ~27 MB of a replica's memory."""

from __future__ import annotations

import os
import tracemalloc

from consensus.crypto import VerificationCache


def test_a_full_default_cache_stays_under_8_mib() -> None:
    cache = VerificationCache()
    public_key = os.urandom(32)
    tracemalloc.start()
    try:
        for _ in range(100_000):  # more than it keeps; signed bytes as a vote's (~100 B)
            cache.add((public_key, os.urandom(100), os.urandom(64)))
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert used < 8 << 20, f"{used >> 20} MiB"


def test_recent_entries_are_kept_and_old_ones_forgotten() -> None:
    cache = VerificationCache(capacity=3)
    keys = [(b"k", bytes([n]), b"s") for n in range(5)]
    for key in keys:
        cache.add(key)
    assert not cache.contains(keys[0]) and not cache.contains(keys[1])
    assert all(cache.contains(k) for k in keys[2:])
