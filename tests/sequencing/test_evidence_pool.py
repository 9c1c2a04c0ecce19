"""The evidence pool: dedup, the per-offender cap, expiry and byte-capped selection."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "consensus"))

from consensus_factories import World

from consensus.messages import Evidence, EvidenceKind
from sequencing.config import Limits
from sequencing.replica.evidence_pool import EvidencePool

W = World.make(4)


def double_vote(offender: int, round: int) -> Evidence:
    a = W.block(round, W.genesis, payload=b"a")
    b = W.block(round, W.genesis, payload=b"b")
    return Evidence.of(EvidenceKind.DOUBLE_VOTE, offender, round,
                       (a.id, W.vote(offender, round, a.id).signature),
                       (b.id, W.vote(offender, round, b.id).signature))


def test_known_evidence_is_not_added_twice() -> None:
    pool = EvidencePool(Limits())
    e = double_vote(2, 1)
    assert pool.add(e) and not pool.add(e)
    pool.mark_committed([e])
    assert not pool.add(e) and pool.is_committed(e.id) and len(pool) == 0


def test_a_persistent_equivocator_is_capped_per_offender() -> None:
    pool = EvidencePool(Limits(evidence_max_per_offender=3))
    kept = [pool.add(double_vote(3, r)) for r in range(1, 11)]
    assert kept == [True] * 3 + [False] * 7 and pool.capped == 7
    assert pool.add(double_vote(1, 5)), "other offenders are not affected"
    pool.mark_committed([double_vote(3, 1)])
    assert not pool.add(double_vote(3, 42)), "committed pieces still count toward the cap"


def test_select_is_oldest_first_byte_capped_and_skips_expired() -> None:
    limits = Limits(evidence_max_bytes_per_block=3 * len(double_vote(1, 1).encode()) + 10,
                    evidence_max_age_rounds=100)
    pool = EvidencePool(limits)
    items = [double_vote(i % 4, r) for i, r in enumerate((50, 10, 30, 20, 40))]
    for e in items:
        pool.add(e)
    chosen = pool.select(block_round=115, exclude=set())
    assert [e.round for e in chosen] == [20, 30, 40]  # round 10 expired at 115, byte cap after 3
    assert pool.select(block_round=115, exclude={chosen[0].id})[0].round == 30
