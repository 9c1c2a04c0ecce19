"""The Replica fed by a lying peer, one input at a time: rewritten certificates in synced blocks,
forged TCs in timeouts, equivocations hidden inside TCs, and a leader asked to sign in a round it
has already timed out. Each test names the check whose removal it catches."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from consensus_factories import World

from consensus.actions import (
    Action,
    Broadcast,
    Commit,
    Dropped,
    FetchBlocks,
    PersistSafety,
    RecordEvidence,
    RequestPayload,
    VerifyPayload,
)
from consensus.block_tree import BlockTree
from consensus.commit_proof import CommitProof, verify_commit_proof
from consensus.core import Replica
from consensus.encoding import hash_bytes
from consensus.errors import LocalProtocolError, UnknownBlock
from consensus.leader import RoundRobin
from consensus.messages import MAX_PAYLOAD, Block, EvidenceKind, Proposal, QuorumCert, Timeout, TimeoutCert, Vote
from consensus.safety import SafetyRules, SafetyState

W = World.make(4)
BAD_SIG = b"\x55" * 64


def replica(me: int, safety: SafetyState | None = None) -> Replica:
    return Replica(signer=W.signer(me), verifier=W.verifier(), leaders=RoundRobin(W.n), safety=safety)


def of(actions: list[Action], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def forged(qc: QuorumCert) -> QuorumCert:
    """Same round and block (so a block carrying it keeps its id), signatures garbage."""
    return QuorumCert(qc.round, qc.block_id, tuple((v, BAD_SIG) for v, _ in qc.votes))


def with_qc(block: Block, qc: QuorumCert) -> Block:
    rewritten = replace(block, qc=qc)
    assert rewritten.id == block.id  # a block id does not cover its QC's signatures
    return rewritten


# -- item 2: a sync peer that rewrites the QCs embedded in committed blocks ----------------------

def _sync(rewrite: str) -> tuple[Replica, list[Action]]:
    b1, b2, b3, b4, b5 = W.chain([1, 2, 3, 4, 5])
    tail = CommitProof((b4.header(), b5.header()), W.qc(b5))
    qc = b3.qc  # certifies b2: the synced chain's proof for b1 is built from it
    bad = forged(qc) if rewrite == "signatures" else W.qc(b2, voters=[0, 1])
    if rewrite == "under-quorum":
        bad = QuorumCert(qc.round, qc.block_id, bad.votes)
    r = replica(2)
    r.start()
    return r, r.on_synced([b1, b2, with_qc(b3, bad), b4], tail)


def test_synced_blocks_with_forged_embedded_qcs_are_refused_whole() -> None:
    for rewrite in ("signatures", "under-quorum"):
        r, out = _sync(rewrite)
        for commit in of(out, Commit):  # fails on the unfixed code: b1's proof carries the forged QC
            verify_commit_proof(commit.proof, commit.block.id, W.verifier(), W.genesis.id)
        assert not of(out, Commit), rewrite
        assert "QC" in of(out, Dropped)[0].reason
        assert r.committed == W.genesis and r.high_qc.round == 0 and r.round == 1


def test_synced_blocks_with_honest_qcs_yield_proofs_that_all_verify() -> None:
    b1, b2, b3, b4, b5 = W.chain([1, 2, 3, 4, 5])
    r = replica(2)
    r.start()
    out = r.on_synced([b1, b2, b3, b4], CommitProof((b4.header(), b5.header()), W.qc(b5)))
    assert [c.block.id for c in of(out, Commit)] == [b1.id, b2.id, b3.id, b4.id]
    for commit in of(out, Commit):
        verify_commit_proof(commit.proof, commit.block.id, W.verifier(), W.genesis.id)
    assert r.committed == b4 and r.high_qc == W.qc(b5)


# -- item 4: a QC inside a TC is checked for equivocation like any other -------------------------

def test_equivocation_inside_a_tcs_high_qc_yields_evidence() -> None:
    a = W.block(1, W.genesis, payload=b"a")
    b = W.block(1, W.genesis, payload=b"b")
    qc_b = W.qc(b, voters=[1, 2, 3])
    tc2 = W.tc(2, {0: W.genesis_qc, 1: W.genesis_qc, 2: qc_b})
    # via a timeout carrying the TC, and via a proposal carrying it
    r = replica(0)
    r.start()
    r.on_message(3, W.vote(3, 1, a.id))
    out = r.on_message(1, W.timeout(1, 3, W.genesis_qc, tc2))
    evidence = [e.evidence for e in of(out, RecordEvidence)]
    assert [(e.kind, e.offender, e.round) for e in evidence] == [(EvidenceKind.DOUBLE_VOTE, 3, 1)]
    r = replica(0)
    r.start()
    r.on_message(3, W.vote(3, 1, a.id))
    b3 = W.block(3, W.genesis)  # its own QC is the genesis one: only the TC carries qc_b
    out = r.on_message(3, W.proposal(b3, tc2))
    assert [e.evidence.offender for e in of(out, RecordEvidence)] == [3]


def test_a_stored_root_proof_is_verified_before_its_qc_becomes_the_high_qc() -> None:
    b1, b2 = W.chain([1, 2])
    good = CommitProof((b1.header(), b2.header()), W.qc(b2))
    bad = replace(good, qc=forged(good.qc))

    def restarted(proof: CommitProof) -> Replica:
        return Replica(signer=W.signer(2), verifier=W.verifier(), leaders=RoundRobin(W.n),
                       root=b1, root_proof=proof)

    assert restarted(good).high_qc == good.qc and restarted(good).root_proof_error is None
    r = restarted(bad)
    assert r.high_qc.round == 0 and r.round == 1
    assert r.root_proof_error is not None and "invalid signature" in r.root_proof_error


# -- a Byzantine replica's timeout carrying a forged TC ------------------------------------------

def _voted_on_b1_b2() -> tuple[Replica, Block, Block]:
    """Replica 0 voted for b1 (round 1) and b2 (round 2, child of b1); b2 is not certified."""
    r = replica(0)
    r.start()
    b1, b2 = W.chain([1, 2])
    for block in (b1, b2):
        out = r.on_message(block.author, W.proposal(block))
        r.on_payload_verified(of(out, VerifyPayload)[0].block.id, True)
    assert r.round == 2 and r.committed == W.genesis
    return r, b1, b2


def test_a_timeout_carrying_a_forged_tc_cannot_make_a_replica_commit_or_advance() -> None:
    """With the timeout's TC unverified (or no verify_timeout at all), the forged QC for b2 inside
    the TC commits b1 although b2 was never certified, and the TC moves the replica to round 4."""
    qc_b2 = W.qc(_voted_on_b1_b2()[2])
    fake_qc = forged(qc_b2)
    entries_forged = tuple((a, 2, BAD_SIG) for a in (0, 1, 2))
    own = W.timeout(3, 3, fake_qc).signature  # the Byzantine replica signs its own entry honestly
    for tc in (
        TimeoutCert(3, fake_qc, entries_forged),
        TimeoutCert(3, fake_qc, ((3, 2, own),)),  # under quorum
    ):
        r, b1, _ = _voted_on_b1_b2()
        timeout = W.timeout(3, 4, W.qc(b1), tc)  # validly signed by replica 3 itself
        out = r.on_message(3, timeout)
        assert not of(out, Commit) and r.committed == W.genesis
        assert r.round == 2 and r.high_qc.round == 1
        assert of(out, Dropped)


def test_a_forged_high_qc_in_a_timeout_is_not_adopted() -> None:
    r, _, b2 = _voted_on_b1_b2()
    out = r.on_message(3, W.timeout(3, 3, forged(W.qc(b2))))
    assert of(out, Dropped) and not of(out, Commit) and r.round == 2 and r.high_qc.round == 1


# -- a leader never proposes or votes in a round it already timed out ----------------------------

def sent(actions: list[Action], kind: type) -> list[Any]:
    return [a.message for a in of(actions, Broadcast) if isinstance(a.message, kind)]


def test_a_leader_that_timed_out_does_not_propose_when_its_payload_arrives() -> None:
    leader = replica(1)
    assert of(leader.start(), RequestPayload)
    assert sent(leader.on_timeout(1), Timeout)
    out = leader.on_payload_ready(1, b"late", hash_bytes(b"late"))
    assert not sent(out, Proposal) and not sent(out, Vote) and not of(out, PersistSafety)
    refusal = of(out, Dropped)[0]
    assert (refusal.sender, refusal.kind) == (1, "NotSafeToVote")
    assert refusal.reason == ("not safe to vote (stale_round): round 1, qc round 0, tc round none, "
                              "tc high qc round none, highest voted round 1, recovery floor 0")


def test_a_follower_that_timed_out_says_why_it_does_not_vote() -> None:
    r = replica(2)
    r.start()
    r.on_timeout(1)
    out = r.on_message(1, W.proposal(W.block(1, W.genesis)))
    assert not of(out, VerifyPayload)
    assert [(d.sender, d.kind) for d in of(out, Dropped)] == [(1, "NotSafeToVote")]
    assert "highest voted round 1" in of(out, Dropped)[0].reason


def test_a_restarted_leader_that_timed_out_in_its_round_asks_for_no_payload() -> None:
    timed_out = SafetyState(1, W.genesis_qc)  # persisted by its timeout in round 1
    leader = replica(1, safety=timed_out)
    out = leader.start()
    assert leader.round == 1 and not of(out, RequestPayload)
    assert not sent(leader.on_payload_ready(1, b"", hash_bytes(b"")), Proposal)


def test_safety_rules_refuse_a_vote_in_a_round_already_timed_out_but_allow_a_repeat_timeout() -> None:
    rules = SafetyRules()
    b1 = W.block(1, W.genesis)
    state = rules.record_vote(SafetyState.initial(W.genesis_qc), 1)  # timed out (or voted) in 1
    assert rules.vote_refusal(state, b1, None) is not None
    assert rules.timeout_refusal(state, 1, W.genesis_qc, None) is None  # re-broadcast of the same timeout
    assert rules.vote_refusal(SafetyState.initial(W.genesis_qc), b1, None) is None


# -- a rejected input leaves the core as it was --------------------------------------------------

def snapshot(r: Replica) -> tuple[object, ...]:
    return (r.round, r.safety, r.committed.id, frozenset(r.tree._blocks), dict(r._fetching),
            dict(r._fetched))


def test_a_malformed_proposal_is_dropped_before_its_certificates_change_anything() -> None:
    r = replica(0)
    r.start()
    tc2 = W.tc(2, {0: W.genesis_qc, 1: W.genesis_qc, 2: W.genesis_qc})
    good = W.block(3, W.genesis)
    bad = Block(3, 5, W.genesis_qc, 3, b"", good.data_root)  # height 5 right above genesis
    before = snapshot(r)
    out = r.on_message(3, W.proposal(bad, tc2))
    assert "height" in of(out, Dropped)[0].reason and snapshot(r) == before
    r.on_message(3, W.proposal(good, tc2))
    assert r.round == 3 and good.id in r.tree


def test_a_fetched_chain_with_a_forged_qc_is_dropped_whole_and_the_fetch_stays_open() -> None:
    r = replica(0)
    r.start()
    b1, b2, b3 = W.chain([1, 2, 3])
    out = r.on_message(3, W.proposal(b3))
    assert of(out, FetchBlocks)[0].target == b2.id
    before = snapshot(r)
    out = r.on_blocks(3, [b2, with_qc(b1, QuorumCert(0, W.genesis.id, ((0, BAD_SIG),)))])
    assert of(out, Dropped) and snapshot(r) == before
    out = r.on_blocks(3, [with_qc(b2, forged(b2.qc)), b1])
    assert of(out, Dropped) and snapshot(r) == before
    assert not of(r.on_blocks(3, [b2, b1]), Dropped) and b2.id in r.tree  # the honest answer


def test_a_fetched_chain_that_does_not_fit_together_is_dropped_whole() -> None:
    """Only a quorum that signs anything can certify such a chain; still, nothing of it is kept."""
    r = replica(0)
    r.start()
    b1 = W.block(1, W.genesis)
    tall = Block(2, 5, W.qc(b1), 2, b"", b1.data_root)  # height 5 on top of height 1
    b3 = W.block(3, tall)
    out = r.on_message(3, W.proposal(b3))
    assert of(out, FetchBlocks)[0].target == tall.id
    before = snapshot(r)
    out = r.on_blocks(3, [tall, b1])
    assert "height" in of(out, Dropped)[0].reason and snapshot(r) == before


def test_a_payload_that_does_not_fit_a_block_is_a_typed_local_error_and_changes_nothing() -> None:
    leader = replica(1)
    leader.start()
    with pytest.raises(LocalProtocolError, match="payload"):
        leader.on_payload_ready(1, b"x" * (MAX_PAYLOAD + 1), hash_bytes(b""))
    with pytest.raises(LocalProtocolError, match="payload"):
        leader.on_payload_ready(1, b"", b"short root")
    assert sent(leader.on_payload_ready(1, b"", hash_bytes(b"")), Proposal)  # still proposes


def test_looking_up_a_pruned_block_raises_a_typed_error() -> None:
    """The node's payload recheck looks up a block's ancestry after a batch arrives late; by then
    the block (or its parent) may have been pruned by a commit: a typed error, not a bare KeyError."""
    b1, b2 = W.chain([1, 2])
    sibling = W.block(2, b1, payload=b"sibling")
    tree = BlockTree(W.genesis)
    for block in (b1, b2, sibling):
        tree.insert(block)
    assert tree.path_from_root(sibling.id) == [b1, sibling]
    tree.commit(b2.id)
    assert sibling.id not in tree
    with pytest.raises(UnknownBlock, match="not in the tree") as caught:
        tree.path_from_root(sibling.id)
    assert isinstance(caught.value, KeyError)  # callers catching the old KeyError keep working
    assert not tree.extends_root(sibling.id)
    with pytest.raises(UnknownBlock):
        tree.commit(sibling.id)


def test_statements_for_rounds_far_ahead_do_not_accumulate() -> None:
    """One Byzantine replica signing votes and timeouts for ever-higher rounds must not grow the
    aggregators or the equivocation detector without bound."""
    r = replica(0)
    r.start()
    ahead = r.config.max_rounds_ahead
    b = W.block(1, W.genesis)
    for k in range(1, 21):
        far = 1 + ahead + k
        out = r.on_message(3, W.vote(3, far, b.id))
        assert "too far ahead" in of(out, Dropped)[0].reason
        r.on_message(3, W.timeout(3, far, W.genesis_qc))
    assert r.round == 1 and not r._votes._votes and not r._timeouts._timeouts
    assert all(round <= 1 + ahead for round in r.detector.rounds())
    r.on_message(3, W.vote(3, 1 + ahead, b.id))  # within the window: still collected
    r.on_message(3, W.timeout(3, 1 + ahead, W.genesis_qc))
    assert len(r._votes._votes) == 1 and r._timeouts.count(1 + ahead) == 1


def full_state(r: Replica) -> tuple[object, ...]:
    return (*snapshot(r), r.pacemaker.round, r.pacemaker.consecutive_timeouts,
            {k: dict(v) for k, v in r._votes._votes.items()}, set(r._votes._done),
            {k: dict(v) for k, v in r._timeouts._timeouts.items()},
            dict(r._proposals), dict(r._awaiting_payload), r._proposal_context, r._proposed_round,
            r._timed_out_round)


def test_an_unexpected_error_mid_input_leaves_the_replica_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    """The vote completing QC(b2) commits b1; a bug raising after the commit must not leave the
    tree committed without the Commit action ever reaching the node (a hole in its log)."""
    r, b1, b2 = _voted_on_b1_b2()
    r.on_message(1, W.vote(1, 2, b2.id))
    before = full_state(r)

    def bug() -> None:
        raise RuntimeError("injected")

    monkeypatch.setattr(r, "_after_commit", bug)
    with pytest.raises(RuntimeError, match="injected"):
        r.on_message(2, W.vote(2, 2, b2.id))
    assert full_state(r) == before
    monkeypatch.undo()
    out = r.on_message(2, W.vote(2, 2, b2.id))  # the same input again, now handled in full
    assert [c.block.id for c in of(out, Commit)] == [b1.id] and r.round == 3


def test_an_unexpected_error_after_signing_a_vote_unsigns_nothing_that_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r = replica(2)
    r.start()
    b1 = W.block(1, W.genesis)
    r.on_message(1, W.proposal(b1))
    before = full_state(r)
    monkeypatch.setattr(r, "_deliver_vote", lambda vote, out: (_ for _ in ()).throw(RuntimeError("x")))
    with pytest.raises(RuntimeError):
        r.on_payload_verified(b1.id, True)
    assert full_state(r) == before and r.safety.highest_voted_round == 0
    monkeypatch.undo()
    assert sent(r.on_payload_verified(b1.id, True), Vote)


def test_evidence_found_by_an_input_that_then_fails_is_reported_again(monkeypatch: pytest.MonkeyPatch) -> None:
    r = replica(0)
    r.start()
    a = W.block(1, W.genesis, payload=b"a")
    b = W.block(1, W.genesis, payload=b"b")
    r.on_message(3, W.vote(3, 1, a.id))
    monkeypatch.setattr(r, "_collect_vote", lambda vote, out: (_ for _ in ()).throw(RuntimeError("x")))
    with pytest.raises(RuntimeError):
        r.on_message(3, W.vote(3, 1, b.id))  # the evidence it found is lost with the exception
    monkeypatch.undo()
    out = r.on_message(3, W.vote(3, 1, b.id))
    assert [e.evidence.offender for e in of(out, RecordEvidence)] == [3]
