"""The Replica state machine driven by hand: one input at a time, checking the actions it emits
and their order (persist before any vote or timeout leaves)."""

from __future__ import annotations

from typing import Any

import pytest
from consensus_factories import World

from consensus.actions import (
    Action,
    Broadcast,
    Commit,
    Dropped,
    FetchBlocks,
    PersistBlock,
    PersistSafety,
    RecordEvidence,
    RequestPayload,
    RoundEntered,
    SetTimer,
    VerifyPayload,
)
from consensus.commit_proof import CommitProof, verify_commit_proof
from consensus.core import Replica
from consensus.crypto import Signer
from consensus.encoding import hash_bytes
from consensus.errors import LocalProtocolError
from consensus.leader import RoundRobin
from consensus.messages import Block, EvidenceKind, Proposal, Timeout, Vote
from consensus.safety import SafetyState

W = World.make(4)


def replica(me: int, safety: SafetyState | None = None, root: Block | None = None) -> Replica:
    return Replica(signer=W.signer(me), verifier=W.verifier(), leaders=RoundRobin(W.n),
                   safety=safety, root=root)


def of(actions: list[Action], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def sent(actions: list[Action], kind: type) -> list[Any]:
    return [a.message for a in of(actions, Broadcast) if isinstance(a.message, kind)]


def assert_persist_precedes(actions: list[Action], kind: type) -> None:
    """Every outgoing ``kind`` of this replica is preceded by a PersistSafety covering its round."""
    persisted = -1
    for action in actions:
        if isinstance(action, PersistSafety):
            persisted = action.state.highest_voted_round
        if isinstance(action, Broadcast) and isinstance(action.message, kind):
            assert persisted >= action.message.round, f"{kind.__name__} sent before persisting"


def vote_on(r: Replica, proposal: Proposal, sender: int) -> list[Action]:
    out = r.on_message(sender, proposal)
    verify = of(out, VerifyPayload)
    assert verify, f"no VerifyPayload in {out}"
    return out + r.on_payload_verified(verify[0].block.id, True)


def test_start_sets_timer_and_leader_asks_for_payload() -> None:
    leader = replica(1)  # round 1 % 4
    out = leader.start()
    assert of(out, RoundEntered)[0].round == 1
    assert of(out, SetTimer)[0].round == 1
    request = of(out, RequestPayload)[0]
    assert request.round == 1 and request.parent == W.genesis and request.ancestors == ()
    follower = replica(2)
    assert not of(follower.start(), RequestPayload)
    with pytest.raises(LocalProtocolError):
        follower.start()


def test_leader_proposes_persists_then_broadcasts_proposal_and_vote() -> None:
    leader = replica(1)
    leader.start()
    out = leader.on_payload_ready(1, b"txs", hash_bytes(b"txs"))
    kinds = [type(a).__name__ for a in out]
    assert kinds[:4] == ["PersistBlock", "PersistSafety", "Broadcast", "Broadcast"]
    proposal = sent(out, Proposal)[0]
    assert proposal.block.payload == b"txs" and proposal.block.author == 1
    assert sent(out, Vote)[0].block_id == proposal.block.id
    assert_persist_precedes(out, Vote)
    assert leader.on_payload_ready(1, b"again", hash_bytes(b"again")) == []  # one proposal per round


def test_follower_votes_only_after_payload_verified_and_persisted() -> None:
    r = replica(2)
    r.start()
    b1 = W.block(1, W.genesis, payload=b"p")
    out = r.on_message(1, W.proposal(b1))
    assert of(out, VerifyPayload) and not sent(out, Vote)
    out = r.on_payload_verified(b1.id, True)
    assert [type(a) for a in out][:3] == [PersistBlock, PersistSafety, Broadcast]
    assert out[0].block == b1
    assert sent(out, Vote)[0] == W.vote(2, 1, b1.id)
    assert r.safety.highest_voted_round == 1


def test_invalid_payload_is_not_voted_for() -> None:
    r = replica(2)
    r.start()
    b1 = W.block(1, W.genesis)
    r.on_message(1, W.proposal(b1))
    out = r.on_payload_verified(b1.id, False, "missing batch")
    assert not sent(out, Vote)
    assert "invalid payload" in of(out, Dropped)[0].reason


def test_no_second_vote_in_a_round_even_for_a_conflicting_proposal() -> None:
    r = replica(2)
    r.start()
    a = W.block(1, W.genesis, payload=b"a")
    b = W.block(1, W.genesis, payload=b"b")
    vote_on(r, W.proposal(a), 1)
    out = r.on_message(1, W.proposal(b))
    assert of(out, RecordEvidence)[0].evidence.kind == EvidenceKind.DOUBLE_PROPOSAL
    assert not of(out, VerifyPayload) and not sent(out, Vote)


def test_proposal_from_non_leader_is_dropped() -> None:
    r = replica(2)
    r.start()
    b1 = W.block(1, W.genesis, author=3)
    out = r.on_message(3, W.proposal(b1))
    assert "not the leader" in of(out, Dropped)[0].reason


def test_forged_proposal_is_dropped_without_state_change() -> None:
    r = replica(2)
    r.start()
    b1 = W.block(1, W.genesis)
    forged = W.proposal(b1, signer=3)
    out = r.on_message(1, forged)
    assert of(out, Dropped) and r.round == 1 and b1.id not in r.tree


def test_quorum_of_votes_forms_qc_and_advances_round() -> None:
    r = replica(3)
    r.start()
    b1 = W.block(1, W.genesis)
    vote_on(r, W.proposal(b1), 1)
    out: list[Action] = []
    for voter in (0, 1):
        out += r.on_message(voter, W.vote(voter, 1, b1.id))
    assert r.round == 2 and r.high_qc.round == 1 and r.high_qc.block_id == b1.id
    # replica 2 leads round 2, not 3: no payload request here
    assert not of(out, RequestPayload)


def test_two_chain_commits_parent_with_a_verifiable_proof() -> None:
    r = replica(0)
    r.start()
    b1, b2 = W.chain([1, 2])
    vote_on(r, W.proposal(b1), 1)
    vote_on(r, W.proposal(b2), 2)
    out: list[Action] = []
    for voter in (1, 2):
        out += r.on_message(voter, W.vote(voter, 2, b2.id))
    commits = of(out, Commit)
    assert [c.block.id for c in commits] == [b1.id]
    verify_commit_proof(commits[0].proof, b1.id, W.verifier(), W.genesis.id)
    assert r.committed == b1


def test_gap_in_rounds_defers_commit_to_the_next_consecutive_pair() -> None:
    r = replica(0)
    r.start()
    b1 = W.block(1, W.genesis)
    vote_on(r, W.proposal(b1), 1)
    tc2 = W.tc(2, {1: W.qc(b1), 2: W.qc(b1), 3: W.qc(b1)})
    b3 = W.block(3, b1)
    vote_on(r, W.proposal(b3, tc2), 3)
    b4 = W.block(4, b3)
    out = r.on_message(0, W.proposal(b4))
    # QC(b3) inside b4 certifies b3 whose parent b1 has round 1 != 2: no commit yet
    assert not of(out, Commit)
    b5 = W.block(5, b4)
    out = r.on_message(1, W.proposal(b5))
    # QC(b4): b4.round == b3.round + 1, so b3 and its ancestor b1 commit
    commits = of(out, Commit)
    assert [c.block.id for c in commits] == [b1.id, b3.id]
    for c in commits:
        verify_commit_proof(c.proof, c.block.id, W.verifier(), W.genesis.id)


def test_timeout_persists_then_broadcasts_and_stops_voting_in_that_round() -> None:
    r = replica(2)
    r.start()
    out = r.on_timeout(1)
    assert_persist_precedes(out, Timeout)
    timeout = sent(out, Timeout)[0]
    assert timeout.round == 1 and timeout.high_qc.round == 0
    assert of(out, SetTimer)  # re-armed: the timeout is re-broadcast until the round ends
    b1 = W.block(1, W.genesis)
    out = r.on_message(1, W.proposal(b1))
    assert not of(out, VerifyPayload)  # timed out in round 1: no vote in round 1


def test_stale_timer_is_ignored() -> None:
    r = replica(2)
    r.start()
    b1 = W.block(1, W.genesis)
    vote_on(r, W.proposal(b1), 1)
    r.on_message(0, W.vote(0, 1, b1.id))
    r.on_message(1, W.vote(1, 1, b1.id))
    assert r.round == 2
    assert r.on_timeout(1) == []


def test_timeout_certificate_moves_round_and_next_leader_proposes_with_tc() -> None:
    r = replica(2)  # leads round 2
    r.start()
    out = r.on_timeout(1)
    for author in (0, 3):
        out += r.on_message(author, W.timeout(author, 1, W.genesis_qc))
    assert r.round == 2 and r.pacemaker.entered_by_tc
    request = of(out, RequestPayload)[0]
    assert request.round == 2
    out = r.on_payload_ready(2, b"", hash_bytes(b""))
    proposal = sent(out, Proposal)[0]
    assert proposal.last_tc is not None and proposal.last_tc.round == 1


def test_f_plus_one_timeouts_make_a_replica_join() -> None:
    r = replica(2)
    r.start()
    out = r.on_message(0, W.timeout(0, 1, W.genesis_qc))
    assert not sent(out, Timeout)
    out = r.on_message(3, W.timeout(3, 1, W.genesis_qc))
    assert sent(out, Timeout)  # f + 1 = 2 others timed out: join without waiting for the timer


def test_timeout_with_tc_lets_a_laggard_catch_up() -> None:
    r = replica(2)
    r.start()
    tc4 = W.tc(4, {0: W.genesis_qc, 1: W.genesis_qc, 3: W.genesis_qc})
    out = r.on_message(0, W.timeout(0, 5, W.genesis_qc, tc4))
    assert r.round == 5
    assert [a.round for a in of(out, RoundEntered)] == [5]  # no intermediate rounds


def test_missing_parent_is_fetched_then_voted_on() -> None:
    r = replica(0)
    r.start()
    b1, b2, b3 = W.chain([1, 2, 3])
    out = r.on_message(3, W.proposal(b3))
    fetch = of(out, FetchBlocks)[0]
    assert fetch.peer == 3 and fetch.target == b2.id and fetch.above_height == 0
    assert r.round == 3
    out = r.on_blocks(3, [b2, b1])  # newest first
    assert of(out, VerifyPayload)[0].block.id == b3.id
    assert [c.block.id for c in of(out, Commit)] == [b1.id]
    out = r.on_payload_verified(b3.id, True)
    assert sent(out, Vote)[0].block_id == b3.id


def test_unsolicited_or_unlinked_blocks_are_dropped() -> None:
    r = replica(0)
    r.start()
    b1, b2, b3 = W.chain([1, 2, 3])
    assert "nobody asked" in of(r.on_blocks(1, [b2, b1]), Dropped)[0].reason
    r.on_message(3, W.proposal(b3))
    other = W.block(1, W.genesis, payload=b"other")
    assert "hash-linked" in of(r.on_blocks(3, [b2, other]), Dropped)[0].reason


def test_conflicting_votes_yield_evidence_once() -> None:
    r = replica(0)
    r.start()
    a = W.block(1, W.genesis, payload=b"a")
    b = W.block(1, W.genesis, payload=b"b")
    first = r.on_message(3, W.vote(3, 1, a.id))
    assert not of(first, RecordEvidence)
    out = r.on_message(3, W.vote(3, 1, b.id))
    evidence = of(out, RecordEvidence)[0].evidence
    assert evidence.offender == 3 and evidence.kind == EvidenceKind.DOUBLE_VOTE
    assert not of(r.on_message(3, W.vote(3, 1, b.id)), RecordEvidence)


def test_restart_with_persisted_state_never_votes_twice_in_a_round() -> None:
    r = replica(2)
    r.start()
    a = W.block(1, W.genesis, payload=b"a")
    out = vote_on(r, W.proposal(a), 1)
    persisted = of(out, PersistSafety)[-1].state
    restarted = replica(2, safety=persisted)
    restarted.start()
    b = W.block(1, W.genesis, payload=b"b")
    out = restarted.on_message(1, W.proposal(b))
    assert not of(out, VerifyPayload)
    assert restarted.on_payload_verified(b.id, True) == []


def test_recovery_floor_keeps_a_replica_silent() -> None:
    floor = SafetyState(0, W.genesis_qc, recovery_floor=5)
    r = replica(2, safety=floor)
    r.start()
    b1 = W.block(1, W.genesis)
    r.on_message(1, W.proposal(b1))
    assert r.on_payload_verified(b1.id, True) == []
    assert not sent(r.on_timeout(1), Timeout)


def test_replica_rejects_a_key_that_is_not_its_own() -> None:
    impostor = Signer(W.chain_id, 2, W.keys[1])
    with pytest.raises(LocalProtocolError, match="not this replica's committee key"):
        Replica(signer=impostor, verifier=W.verifier(), leaders=RoundRobin(4))
    with pytest.raises(LocalProtocolError, match="different chains"):
        Replica(signer=W.signer(2, "other"), verifier=W.verifier(), leaders=RoundRobin(4))


def test_synced_committed_chain_is_adopted_with_per_block_proofs() -> None:
    r = replica(2)
    r.start()
    b1, b2, b3, b4, b5 = W.chain([1, 2, 4, 5, 6])  # a gap between rounds 2 and 4
    tail = CommitProof((b4.header(), b5.header()), W.qc(b5))
    out = r.on_synced([b1, b2, b3, b4], tail)
    commits = of(out, Commit)
    assert [c.block.id for c in commits] == [b1.id, b2.id, b3.id, b4.id]
    for c in commits:
        verify_commit_proof(c.proof, c.block.id, W.verifier(), W.genesis.id)
    assert len(commits[1].proof.headers) > 2  # b2 (round 2) has no consecutive child: chained proof
    assert r.committed == b4 and r.round == 7 and r.high_qc.round == 6


def test_synced_chain_must_start_at_our_root_be_linked_and_proven() -> None:
    b1, b2, b3 = W.chain([1, 2, 3])
    good = CommitProof((b2.header(), b3.header()), W.qc(b3))
    r = replica(2)
    r.start()
    assert "start right above" in of(r.on_synced([b2], good), Dropped)[0].reason
    other = W.block(1, W.genesis, payload=b"other")
    assert "hash-linked" in of(r.on_synced([other, b2], good), Dropped)[0].reason
    weak = CommitProof((b2.header(), b3.header()), W.qc(b3, voters=[0, 1]))
    assert of(r.on_synced([b1, b2], weak), Dropped)
    assert r.committed == W.genesis
