"""Evidence a peer sends is recorded only if it verifies: a forged or framing piece of evidence
would otherwise be stored, gossiped and committed against an honest replica (invariant 6). Kills
the mutant `core-records-unverified-evidence` (tests/mutation/catalogue.py), which survived the
whole suite."""

from __future__ import annotations

import dataclasses

from consensus_factories import World

from consensus.actions import Dropped, RecordEvidence
from consensus.core import Replica
from consensus.leader import RoundRobin
from consensus.messages import Evidence, EvidenceKind

W = World.make(4)


def double_vote(offender: int, round: int) -> Evidence:
    a, b = W.block(round, W.genesis, payload=b"a"), W.block(round, W.genesis, payload=b"b")
    va, vb = W.vote(offender, round, a.id), W.vote(offender, round, b.id)
    return Evidence.of(EvidenceKind.DOUBLE_VOTE, offender, round, (a.id, va.signature), (b.id, vb.signature))


def test_only_evidence_that_verifies_is_recorded() -> None:
    r = Replica(signer=W.signer(0), verifier=W.verifier(), leaders=RoundRobin(W.n))
    r.start()
    real = double_vote(2, 1)
    assert [a.evidence for a in r.on_message(3, real) if isinstance(a, RecordEvidence)] == [real]
    framed = dataclasses.replace(real, offender=1)  # replica 1 signed neither statement
    wrong_round = dataclasses.replace(real, round=2)
    forged = dataclasses.replace(real, signature_b=real.signature_a)
    for bad in (framed, wrong_round, forged):
        out = r.on_message(3, bad)
        assert not [a for a in out if isinstance(a, RecordEvidence)], bad
        assert [a.kind for a in out if isinstance(a, Dropped)] == ["Evidence"]


def test_the_detector_forgets_exactly_the_rounds_below_the_pruning_point() -> None:
    from consensus.evidence import EquivocationDetector

    detector = EquivocationDetector()
    sig = b"\x01" * 64
    for round in range(1, 1001):
        for signer in range(4):
            assert detector.observe(EvidenceKind.DOUBLE_VOTE, round, signer, b"\xaa" * 32, sig) is None
    detector.prune(500)
    assert min(detector.rounds()) == 500 and len(detector.rounds()) == 501
    # round 499 is forgotten: a conflicting statement there is a first statement again
    assert detector.observe(EvidenceKind.DOUBLE_VOTE, 499, 1, b"\xbb" * 32, sig) is None
    evidence = detector.observe(EvidenceKind.DOUBLE_VOTE, 500, 1, b"\xbb" * 32, sig)
    assert evidence is not None and evidence.round == 500 and evidence.offender == 1
    assert detector.observe(EvidenceKind.DOUBLE_VOTE, 500, 1, b"\xcc" * 32, sig) is None  # reported once
    # another kind in the same round and signer is a separate statement
    assert detector.observe(EvidenceKind.DOUBLE_PROPOSAL, 500, 1, b"\xbb" * 32, sig) is None
    detector.prune(501)
    assert detector.observe(EvidenceKind.DOUBLE_VOTE, 500, 1, b"\xdd" * 32, sig) is None
