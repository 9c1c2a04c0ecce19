"""One focused test per certificate check, each written so that removing or weakening that one
check (a source mutant) makes it fail: TC quorum, distinct TC authors, TC entry signatures, the TC's
embedded high QC, a timeout's TC, non-member signers, chain ids, and evidence naming one block
twice. The QC's own checks are guarded in test_messages.py."""

from __future__ import annotations

import dataclasses

import pytest
from consensus_factories import World

from consensus.commit_proof import CommitProof, verify_commit_proof
from consensus.committee import Committee
from consensus.crypto import SignatureKind, Verifier
from consensus.encoding import pack
from consensus.errors import DecodeError, InvalidMessage
from consensus.evidence import verify_evidence
from consensus.messages import BlockHeader, Evidence, EvidenceKind, QuorumCert, TimeoutCert, decode_message
from consensus.validation import (
    timeout_payload,
    verify_block_certificate,
    verify_qc,
    verify_tc,
    verify_timeout,
    verify_vote,
)

W = World.make(4)
W7 = World.make(7)
BAD_SIG = b"\x55" * 64


def G(world: World = W) -> bytes:
    return world.genesis.id


def tc_of(world: World, round: int, authors: list[int], high_qc: QuorumCert | None = None) -> TimeoutCert:
    hqc = high_qc if high_qc is not None else world.genesis_qc
    return world.tc(round, dict.fromkeys(authors, hqc))


# -- timeout certificates ------------------------------------------------------------------------

def test_tc_one_short_of_quorum_is_rejected() -> None:
    verify_tc(tc_of(W, 2, [0, 1, 2]), W.verifier(), G())
    with pytest.raises(InvalidMessage, match="quorum"):
        verify_tc(tc_of(W, 2, [0, 1]), W.verifier(), G())
    verify_tc(tc_of(W7, 2, [0, 1, 2, 3, 6]), W7.verifier(), G(W7))
    with pytest.raises(InvalidMessage, match="quorum"):
        verify_tc(tc_of(W7, 2, [0, 1, 2, 6]), W7.verifier(), G(W7))


def test_tc_authors_must_be_distinct() -> None:
    good = tc_of(W, 2, [0, 1])
    repeated = (*good.entries, good.entries[1])  # 3 entries, 2 authors, every signature valid
    with pytest.raises(DecodeError, match="unique"):
        TimeoutCert(2, W.genesis_qc, repeated)
    wire = [2, W.genesis_qc.to_wire(), [[a, r, s] for a, r, s in repeated]]
    with pytest.raises(DecodeError, match="unique"):
        TimeoutCert.from_wire(wire)


def test_tc_entry_with_an_invalid_signature_is_rejected() -> None:
    tc = tc_of(W, 2, [0, 1, 2])
    (a0, r0, _), rest = tc.entries[0], tc.entries[1:]
    for sig in (BAD_SIG, tc.entries[1][2]):  # garbage, and replica 1's signature claimed by 0
        forged = TimeoutCert(2, tc.high_qc, ((a0, r0, sig), *rest))
        with pytest.raises(InvalidMessage, match="invalid signature from replica 0"):
            verify_tc(forged, W.verifier(), G())
    # a signature over another high-QC round than the entry claims
    b1 = W.block(1, W.genesis)
    lying = TimeoutCert(2, W.qc(b1), ((a0, 1, tc.entries[0][2]), *rest))
    with pytest.raises(InvalidMessage, match="invalid signature from replica 0"):
        verify_tc(lying, W.verifier(), G())


def test_tc_whose_high_qc_is_forged_is_rejected() -> None:
    b1 = W.block(1, W.genesis)
    qc = W.qc(b1)
    tc = W.tc(2, {0: qc, 1: W.genesis_qc, 2: W.genesis_qc})
    verify_tc(tc, W.verifier(), G())
    forged_qc = QuorumCert(qc.round, qc.block_id, tuple((v, BAD_SIG) for v, _ in qc.votes))
    with pytest.raises(InvalidMessage, match="QC carries an invalid signature"):
        verify_tc(dataclasses.replace(tc, high_qc=forged_qc), W.verifier(), G())
    under = W.qc(b1, voters=[0, 1])
    with pytest.raises(InvalidMessage, match="QC has 2 votes"):
        verify_tc(dataclasses.replace(tc, high_qc=under), W.verifier(), G())


def test_tc_whose_high_qc_is_not_older_than_the_tc_is_rejected() -> None:
    b2 = W.block(2, W.block(1, W.genesis))
    same_round = W.tc(2, {0: W.qc(b2), 1: W.genesis_qc, 2: W.genesis_qc})  # every signature valid
    with pytest.raises(InvalidMessage, match="older than the TC"):
        verify_tc(same_round, W.verifier(), G())


def test_tc_signer_outside_the_committee_is_rejected() -> None:
    tc = tc_of(W, 2, [0, 1, 2])
    outsider = TimeoutCert(2, tc.high_qc, (*tc.entries, (9, 0, tc.entries[0][2])))
    with pytest.raises(InvalidMessage, match="TC signer 9 is not in the committee"):
        verify_tc(outsider, W.verifier(), G())


def test_certificates_signed_for_another_chain_are_rejected() -> None:
    """Same keys, another chain id: only the chain id in the signing bytes tells them apart."""
    b1 = W.block(1, W.genesis)
    votes = tuple((v, W.vote(v, 1, b1.id, chain_id="other-chain").signature) for v in (0, 1, 2))
    with pytest.raises(InvalidMessage, match="invalid signature"):
        verify_qc(QuorumCert(1, b1.id, votes), W.verifier(), G())
    entries = tuple(
        (a, 0, W.signer(a, "other-chain").sign(SignatureKind.TIMEOUT, 2, timeout_payload(0)))
        for a in (0, 1, 2)
    )
    with pytest.raises(InvalidMessage, match="invalid signature"):
        verify_tc(TimeoutCert(2, W.genesis_qc, entries), W.verifier(), G())
    # and a verifier checks against its own committee's chain id, whatever chain the tests use
    other = Verifier(Committee("other-chain", W.committee.public_keys))
    assert other.verify(0, SignatureKind.VOTE, 1, b1.id, votes[0][1])
    assert not other.verify(0, SignatureKind.VOTE, 1, b1.id, W.vote(0, 1, b1.id).signature)


# -- timeouts ------------------------------------------------------------------------------------

def test_timeout_carrying_a_forged_tc_is_rejected() -> None:
    good = tc_of(W, 2, [0, 1, 2])
    verify_timeout(W.timeout(3, 3, W.genesis_qc, good), W.verifier(), G())
    for bad in (
        tc_of(W, 2, [0, 1]),  # under quorum
        TimeoutCert(2, good.high_qc, tuple((a, r, BAD_SIG) for a, r, _ in good.entries)),
    ):
        with pytest.raises(InvalidMessage):
            verify_timeout(W.timeout(3, 3, W.genesis_qc, bad), W.verifier(), G())


def test_timeout_carrying_a_tc_for_another_round_is_rejected() -> None:
    tc = tc_of(W, 1, [0, 1, 2])
    with pytest.raises(InvalidMessage, match="previous round"):
        verify_timeout(W.timeout(3, 3, W.genesis_qc, tc), W.verifier(), G())


def test_statements_from_outside_the_committee_are_rejected_as_such() -> None:
    b1 = W.block(1, W.genesis)
    vote = W.vote(0, 1, b1.id)
    with pytest.raises(InvalidMessage, match="not in the committee"):
        verify_vote(dataclasses.replace(vote, voter=9), W.verifier())
    timeout = W.timeout(0, 1, W.genesis_qc)
    with pytest.raises(InvalidMessage, match="not in the committee"):
        verify_timeout(dataclasses.replace(timeout, author=9), W.verifier(), G())
    with pytest.raises(InvalidMessage, match="author 9 is not in the committee"):
        verify_block_certificate(dataclasses.replace(b1, author=9), W.verifier(), G())


# -- evidence ------------------------------------------------------------------------------------

def test_evidence_naming_one_block_twice_is_not_evidence() -> None:
    a = W.block(1, W.genesis, payload=b"a")
    sig = W.vote(2, 1, a.id).signature
    with pytest.raises(DecodeError):
        Evidence(EvidenceKind.DOUBLE_VOTE, 2, 1, a.id, sig, a.id, sig)
    with pytest.raises(DecodeError):
        decode_message(pack([4, [1, 2, 1, a.id, sig, a.id, sig]]))
    # verify_evidence does not rely on the constructor: an object built around it is refused too
    same = object.__new__(Evidence)
    for name, value in zip(
        ("kind", "offender", "round", "block_a", "signature_a", "block_b", "signature_b"),
        (EvidenceKind.DOUBLE_VOTE, 2, 1, a.id, sig, a.id, sig), strict=True,
    ):
        object.__setattr__(same, name, value)
    with pytest.raises(InvalidMessage, match="do not conflict"):
        verify_evidence(same, W.verifier())


# -- commit proofs: a verifier trusts no header field, even under a quorum's signatures ----------

def certified_proof(*headers: BlockHeader, qc_round: int | None = None) -> CommitProof:
    """A proof whose QC a full quorum really signed, over whatever headers it is given."""
    last = headers[-1]
    r = last.round if qc_round is None else qc_round
    votes = tuple((v, W.vote(v, r, last.id).signature) for v in (0, 1, 2))
    return CommitProof(tuple(headers), QuorumCert(r, last.id, votes))


def test_commit_proof_headers_must_chain_rounds_and_heights_and_the_qc_round() -> None:
    b1, b2 = W.chain([1, 2])
    h1, h2 = b1.header(), b2.header()
    verify_commit_proof(certified_proof(h1, h2), b1.id, W.verifier(), G())
    lying_round = dataclasses.replace(h2, parent_round=0)  # says its parent has round 0
    with pytest.raises(InvalidMessage, match="not a parent chain"):
        verify_commit_proof(certified_proof(h1, lying_round), b1.id, W.verifier(), G())
    skipping = dataclasses.replace(h2, height=5)
    with pytest.raises(InvalidMessage, match="heights"):
        verify_commit_proof(certified_proof(h1, skipping), b1.id, W.verifier(), G())
    with pytest.raises(InvalidMessage, match="does not certify"):
        verify_commit_proof(certified_proof(h1, h2, qc_round=3), b1.id, W.verifier(), G())
