"""The signature memo stays small: it only has to span the few rounds between a vote (or timeout)
and the certificate that repeats its signature, and each entry holds the signed bytes and the
signature (~400 bytes). At the default capacity it used to take ~27 MB of a replica's memory."""

from __future__ import annotations

import os
import tracemalloc
from typing import Any

from consensus_factories import World

from consensus.actions import VerifyPayload
from consensus.core import Replica
from consensus.crypto import VerificationCache
from consensus.leader import RoundRobin


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


class _CountingKey:
    """An Ed25519 public key that counts the signatures it checks."""

    def __init__(self, key: Any, calls: list[int]) -> None:
        self._key, self._calls = key, calls

    def verify(self, signature: bytes, message: bytes) -> None:
        self._calls.append(1)
        self._key.verify(signature, message)


def test_a_replica_does_not_check_its_own_signatures_again() -> None:
    """A replica's own vote comes back inside the next proposal's QC (and its own timeout inside a
    TC); it made that signature with its committee key, so checking it costs an Ed25519 verify
    (~50 us) per round for nothing. Only the peers' signatures are checked."""
    world = World.make(4)
    verifier = world.verifier()
    calls: list[int] = []
    verifier._keys = [_CountingKey(k, calls) for k in verifier._keys]  # type: ignore[assignment]
    me = 2
    r = Replica(signer=world.signer(me), verifier=verifier, leaders=RoundRobin(world.n))
    r.start()
    b1 = world.block(1, world.genesis)
    out = r.on_message(1, world.proposal(b1))
    r.on_payload_verified(next(a for a in out if isinstance(a, VerifyPayload)).block.id, True)
    assert len(calls) == 1  # the proposal's signature (its QC is the genesis certificate)
    calls.clear()
    b2 = world.block(2, b1, qc=world.qc(b1, voters=[0, 1, me]))
    r.on_message(2, world.proposal(b2))
    assert len(calls) == 3  # the proposal and the votes of 0 and 1; not replica 2's own vote
