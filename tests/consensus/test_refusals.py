"""Refusals carry reasons: each safety rule that refuses a vote or a timeout says which rule it was
and the rounds it compared, and the core reports it (and every input it drops) as a ``Dropped``
with a ``DropKind``. Each rule is tested at its boundary: refused with the right reason and numbers
one side, allowed the other, so a weakened rule (the mutants of tests/mutation/catalogue.py on
consensus/safety.py) or a reason swapped for another fails here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from consensus_factories import World

from consensus.actions import Action, Broadcast, DropKind, Dropped, RequestPayload, VerifyPayload
from consensus.commit_proof import CommitProof
from consensus.core import Replica
from consensus.encoding import hash_bytes
from consensus.leader import RoundRobin
from consensus.messages import Block, QuorumCert, Timeout, Vote
from consensus.safety import NotSafeToTimeout, NotSafeToVote, Refusal, SafetyRules, SafetyState

W = World.make(4)
RULES = SafetyRules()
B1, B2, B3 = W.chain([1, 2, 3])
QC1, QC2, QC3 = W.qc(B1), W.qc(B2), W.qc(B3)


def state(voted: int = 0, high_qc: QuorumCert | None = None, floor: int = 0) -> SafetyState:
    return SafetyState(voted, W.genesis_qc if high_qc is None else high_qc, floor)


def block(round: int, qc: QuorumCert) -> Block:
    return W.block(round, {1: B1, 2: B2, 3: B3}[qc.round], qc=qc)


# -- the vote rule -------------------------------------------------------------------------------

def test_vote_in_a_round_already_signed_is_stale() -> None:
    b3 = block(3, QC2)
    assert RULES.vote_refusal(state(voted=3), b3, None) == NotSafeToVote(
        Refusal.STALE_ROUND, round=3, qc_round=2, tc_round=None, tc_high_qc_round=None,
        highest_voted_round=3, recovery_floor=0)
    assert RULES.vote_refusal(state(voted=2), b3, None) is None


def test_vote_at_or_below_the_recovery_floor() -> None:
    b3 = block(3, QC2)
    assert RULES.vote_refusal(state(floor=3), b3, None) == NotSafeToVote(
        Refusal.RECOVERY_FLOOR, round=3, qc_round=2, tc_round=None, tc_high_qc_round=None,
        highest_voted_round=0, recovery_floor=3)
    assert RULES.vote_refusal(state(floor=2), b3, None) is None
    # both hold: the round rule is checked first
    both = RULES.vote_refusal(state(voted=3, floor=3), b3, None)
    assert both is not None and both.reason == Refusal.STALE_ROUND


def test_vote_needs_a_qc_or_a_tc_of_the_previous_round() -> None:
    b4 = block(4, QC2)  # QC of round 2 in round 4: justified only by a TC for round 3
    assert RULES.vote_refusal(state(), b4, None) == NotSafeToVote(
        Refusal.NOT_JUSTIFIED, round=4, qc_round=2, tc_round=None, tc_high_qc_round=None,
        highest_voted_round=0, recovery_floor=0)
    old_tc = W.tc(2, {0: QC1, 1: QC1, 2: QC1})  # a TC, but for round 2, not 3
    assert RULES.vote_refusal(state(), b4, old_tc) == NotSafeToVote(
        Refusal.NOT_JUSTIFIED, round=4, qc_round=2, tc_round=2, tc_high_qc_round=1,
        highest_voted_round=0, recovery_floor=0)
    assert RULES.vote_refusal(state(), b4, W.tc(3, {0: QC2, 1: QC1, 2: QC1})) is None


def test_vote_after_a_tc_must_extend_its_highest_qc() -> None:
    tc3 = W.tc(3, {0: QC2, 1: QC1, 2: QC1})  # highest QC inside: round 2
    b4 = block(4, QC1)
    assert RULES.vote_refusal(state(), b4, tc3) == NotSafeToVote(
        Refusal.TC_LOCK, round=4, qc_round=1, tc_round=3, tc_high_qc_round=2,
        highest_voted_round=0, recovery_floor=0)
    assert RULES.vote_refusal(state(), block(4, QC2), tc3) is None


def test_vote_refusal_reads_in_the_log_with_its_numbers() -> None:
    refusal = RULES.vote_refusal(state(), block(4, QC1), W.tc(3, {0: QC2, 1: QC1, 2: QC1}))
    assert str(refusal) == ("not safe to vote (tc_lock): round 4, qc round 1, tc round 3, "
                            "tc high qc round 2, highest voted round 0, recovery floor 0")


# -- the timeout rule ----------------------------------------------------------------------------

def test_timeout_below_the_highest_signed_round_is_stale_but_a_repeat_is_not() -> None:
    assert RULES.timeout_refusal(state(voted=3, high_qc=QC1), 2, QC1, None) == NotSafeToTimeout(
        Refusal.STALE_ROUND, round=2, qc_round=1, tc_round=None, highest_voted_round=3,
        recovery_floor=0, locked_round=1)
    assert RULES.timeout_refusal(state(voted=3, high_qc=QC2), 3, QC2, None) is None  # re-broadcast


def test_timeout_at_or_below_the_recovery_floor() -> None:
    assert RULES.timeout_refusal(state(high_qc=QC2, floor=3), 3, QC2, None) == NotSafeToTimeout(
        Refusal.RECOVERY_FLOOR, round=3, qc_round=2, tc_round=None, highest_voted_round=0,
        recovery_floor=3, locked_round=2)
    assert RULES.timeout_refusal(state(high_qc=QC3, floor=3), 4, QC3, None) is None


def test_timeout_must_carry_the_highest_qc_it_has_seen() -> None:
    tc2 = W.tc(2, {0: QC1, 1: QC1, 2: QC1})
    assert RULES.timeout_refusal(state(high_qc=QC2), 3, QC1, tc2) == NotSafeToTimeout(
        Refusal.STALE_QC, round=3, qc_round=1, tc_round=2, highest_voted_round=0,
        recovery_floor=0, locked_round=2)
    assert RULES.timeout_refusal(state(high_qc=QC1), 3, QC1, tc2) is None


def test_timeout_needs_a_qc_or_a_tc_of_the_previous_round() -> None:
    assert RULES.timeout_refusal(state(high_qc=QC1), 3, QC1, None) == NotSafeToTimeout(
        Refusal.NOT_JUSTIFIED, round=3, qc_round=1, tc_round=None, highest_voted_round=0,
        recovery_floor=0, locked_round=1)
    tc1 = W.tc(1, {0: W.genesis_qc, 1: W.genesis_qc, 2: W.genesis_qc})
    wrong_tc = RULES.timeout_refusal(state(high_qc=QC1), 3, QC1, tc1)
    assert wrong_tc is not None and wrong_tc.reason == Refusal.NOT_JUSTIFIED and wrong_tc.tc_round == 1
    assert RULES.timeout_refusal(state(high_qc=QC2), 3, QC2, None) is None


# -- the core reports them -----------------------------------------------------------------------

def replica(me: int, safety: SafetyState | None = None) -> Replica:
    return Replica(signer=W.signer(me), verifier=W.verifier(), leaders=RoundRobin(W.n), safety=safety)


def dropped(out: list[Action]) -> list[Dropped]:
    return [a for a in out if isinstance(a, Dropped)]


def broadcast(out: list[Action], kind: type) -> list[Any]:
    return [a.message for a in out if isinstance(a, Broadcast) and isinstance(a.message, kind)]


def test_a_follower_reports_the_vote_refusal_with_the_proposer_as_sender() -> None:
    r = replica(2)
    r.start()
    r.on_timeout(1)
    out = r.on_message(1, W.proposal(W.block(1, W.genesis)))
    assert not [a for a in out if isinstance(a, VerifyPayload)]
    refusal = NotSafeToVote(Refusal.STALE_ROUND, 1, 0, None, None, 1, 0)
    assert dropped(out) == [Dropped(1, DropKind.NOT_SAFE_TO_VOTE, str(refusal), refusal)]


def test_a_leader_reports_refusing_its_own_late_proposal() -> None:
    leader = replica(1)
    leader.start()
    leader.on_timeout(1)
    out = leader.on_payload_ready(1, b"late", hash_bytes(b"late"))
    refusal = NotSafeToVote(Refusal.STALE_ROUND, 1, 0, None, None, 1, 0)
    assert dropped(out) == [Dropped(1, DropKind.NOT_SAFE_TO_VOTE, str(refusal), refusal)]


def test_a_replica_below_its_recovery_floor_reports_refusing_to_time_out() -> None:
    r = replica(2, safety=SafetyState(0, W.genesis_qc, recovery_floor=5))
    r.start()
    out = r.on_timeout(1)
    assert not broadcast(out, Timeout)
    refusal = NotSafeToTimeout(Refusal.RECOVERY_FLOOR, 1, 0, None, 0, 5, 0)
    assert dropped(out) == [Dropped(2, DropKind.NOT_SAFE_TO_TIMEOUT, str(refusal), refusal)]
    out = _started(replica(2)).on_timeout(1)  # without a floor: times out, nothing refused
    assert broadcast(out, Timeout) and not dropped(out)


def _started(r: Replica) -> Replica:
    r.start()
    return r


def _bad_inputs() -> list[tuple[DropKind, Callable[[Replica], list[Action]]]]:
    def bad_vote(r: Replica) -> list[Action]:
        return r.on_message(3, Vote(1, B1.id, 3, b"\x55" * 64))

    def bad_timeout(r: Replica) -> list[Action]:
        t = W.timeout(3, 1, W.genesis_qc)
        return r.on_message(3, Timeout(t.round, t.high_qc, t.author, b"\x55" * 64, None))

    def bad_proposal(r: Replica) -> list[Action]:
        return r.on_message(3, W.proposal(W.block(1, W.genesis, author=3)))  # not the leader

    def bad_payload(r: Replica) -> list[Action]:
        b1 = W.block(1, W.genesis)
        r.on_message(1, W.proposal(b1))
        return r.on_payload_verified(b1.id, False, "missing batch")

    def bad_blocks(r: Replica) -> list[Action]:
        return r.on_blocks(3, [B2, B1])  # nobody asked

    def bad_sync(r: Replica) -> list[Action]:
        return r.on_synced([B2], CommitProof((B2.header(), B3.header()), QC3))  # not above our root

    def not_a_message(r: Replica) -> list[Action]:
        return r.on_message(3, RequestPayload(1, W.genesis, ()))  # type: ignore[arg-type]

    return [(DropKind.VOTE, bad_vote), (DropKind.TIMEOUT, bad_timeout), (DropKind.PROPOSAL, bad_proposal),
            (DropKind.PAYLOAD, bad_payload), (DropKind.BLOCKS, bad_blocks), (DropKind.SYNC, bad_sync),
            (DropKind.UNEXPECTED, not_a_message)]


BAD_INPUTS = _bad_inputs()


@pytest.mark.parametrize(("kind", "feed"), BAD_INPUTS, ids=[str(kind) for kind, _ in BAD_INPUTS])
def test_every_dropped_input_says_what_it_was(kind: DropKind, feed: Callable[[Replica], list[Action]]) -> None:
    out = feed(_started(replica(2)))
    assert [(d.kind, d.refusal) for d in dropped(out)] == [(kind, None)], out
    assert dropped(out)[0].reason  # and why, for the log


def test_drop_kinds_are_readable_metric_labels() -> None:
    assert {str(k) for k in DropKind} == {
        "Proposal", "Payload", "Vote", "Timeout", "Evidence", "Blocks", "Sync", "Unexpected",
        "NotSafeToVote", "NotSafeToTimeout"}
    assert {str(r) for r in Refusal} == {"stale_round", "recovery_floor", "stale_qc", "not_justified", "tc_lock"}
