"""The Replica fed by a lying peer, one input at a time: rewritten certificates in synced blocks,
forged TCs in timeouts, equivocations hidden inside TCs, and a leader asked to sign in a round it
has already timed out. Each test names the check whose removal it catches."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from consensus_factories import World

from consensus.actions import Action, Commit, Dropped, RecordEvidence
from consensus.commit_proof import CommitProof, verify_commit_proof
from consensus.core import Replica
from consensus.leader import RoundRobin
from consensus.messages import Block, EvidenceKind, QuorumCert
from consensus.safety import SafetyState

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
