"""The recovery floor arithmetic (PROTOCOL.md section 8), checked exhaustively for small
committees: with every possible signer set of the last certificate the lost replica may have
helped form, every placement of f Byzantine replicas and every set of answering peers of the
required size, the floor is at least the round it may have signed in; with one answer fewer,
some placement gives a floor below it (so the bound is also the least one)."""

from __future__ import annotations

from itertools import combinations

import pytest

from consensus.committee import Committee
from consensus.crypto import KeyPair
from sequencing.replica.recovery import answers_needed, floor_from

SIGNED_ROUND = 10  # the replica may have signed in round s: a certificate for s - 1 existed


def committee(n: int) -> Committee:
    return Committee("t", tuple(KeyPair.from_seed(bytes([i])).public for i in range(n)))


def worst_answers(n: int, me: int, signers: frozenset[int], byzantine: frozenset[int]) -> dict[int, int]:
    """Each peer's answer in the worst case: an honest signer of the certificate for s - 1 holds
    one for s - 2 at least; everyone else (lagging honest replicas, Byzantine ones) shows round 0."""
    return {p: SIGNED_ROUND - 2 if p in signers and p not in byzantine else 0 for p in range(n) if p != me}


def scenarios(n: int) -> list[tuple[int, frozenset[int], frozenset[int]]]:
    c = committee(n)
    out = []
    for me in range(n):
        others = [p for p in range(n) if p != me]
        for signers in combinations(range(n), c.quorum):
            for byzantine in combinations(others, c.max_faulty):
                out.append((me, frozenset(signers), frozenset(byzantine)))
    return out


@pytest.mark.parametrize("n", range(2, 9))
def test_the_floor_covers_every_round_the_replica_may_have_signed(n: int) -> None:
    c = committee(n)
    needed = answers_needed(c)
    assert needed <= n - 1
    for me, signers, byzantine in scenarios(n):
        answers = worst_answers(n, me, signers, byzantine)
        for chosen in combinations(sorted(answers), needed):
            floor = floor_from({p: answers[p] for p in chosen}, c, me)
            assert floor is not None and floor >= SIGNED_ROUND, (n, me, signers, byzantine, chosen)


@pytest.mark.parametrize("n", range(2, 9))
def test_one_answer_fewer_is_not_enough(n: int) -> None:
    """Minimality: with needed - 1 answers some scenario's highest certificate is too low (so a
    floor computed from them could let the replica sign twice in round s)."""
    c = committee(n)
    needed = answers_needed(c)
    unsafe = False
    for me, signers, byzantine in scenarios(n):
        answers = worst_answers(n, me, signers, byzantine)
        for chosen in combinations(sorted(answers), needed - 1):
            if max((answers[p] for p in chosen), default=0) + 2 < SIGNED_ROUND:
                unsafe = True
    assert unsafe


@pytest.mark.parametrize(("n", "needed"), [(2, 1), (3, 2), (4, 3), (5, 3), (6, 4), (7, 5), (8, 5), (10, 7)])
def test_answers_needed_table(n: int, needed: int) -> None:
    """n = 4 needs all three other replicas: one peer down blocks --recover (docs/OPERATIONS.md)."""
    assert answers_needed(committee(n)) == needed


def test_floor_from_counts_distinct_peers_and_takes_the_highest_plus_two() -> None:
    c = committee(4)
    assert floor_from({0: 5, 1: 9}, c, me=3) is None  # two of the three needed
    assert floor_from({0: 5, 1: 9, 3: 50}, c, me=3) is None  # its own answer does not count
    assert floor_from({0: 5, 1: 9, 7: 50}, c, me=3) is None  # nor a non-member's
    assert floor_from({0: 5, 1: 9, 2: 7}, c, me=3) == 11  # max + 2, not min, not + 1
