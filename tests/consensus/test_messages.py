"""Wire encoding round-trips, strict decoding of malformed bytes, and rejection of forged or
inconsistent messages (signature, chain id, round, quorum, committee membership)."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest
from consensus_factories import World
from hypothesis import given
from hypothesis import strategies as st

from consensus.commit_proof import CommitProof, verify_commit_proof
from consensus.encoding import pack
from consensus.errors import DecodeError, InvalidMessage
from consensus.evidence import verify_evidence
from consensus.messages import (
    Block,
    Evidence,
    EvidenceKind,
    Proposal,
    QuorumCert,
    Timeout,
    TimeoutCert,
    Vote,
    decode_message,
    encode_message,
)
from consensus.safety import SafetyState
from consensus.validation import verify_proposal, verify_qc, verify_tc, verify_timeout, verify_vote

W = World.make(4)
W7 = World.make(7)


def G() -> bytes:
    return W.genesis.id


# -- round trips ---------------------------------------------------------------------------------

rounds = st.integers(min_value=1, max_value=2**40)
digests = st.binary(min_size=32, max_size=32)
payloads = st.binary(max_size=512)


@st.composite
def blocks(draw: st.DrawFn) -> Block:
    r = draw(rounds)
    qc_round = draw(st.integers(min_value=0, max_value=r - 1))
    voters = draw(st.lists(st.integers(0, 3), unique=True, max_size=4))
    qc = QuorumCert(qc_round, draw(digests), tuple((v, bytes([v]) * 64) for v in sorted(voters)))
    return Block(r, draw(st.integers(1, 2**40)), qc, draw(st.integers(0, 3)), draw(payloads), draw(digests))


@st.composite
def messages(draw: st.DrawFn) -> Proposal | Vote | Timeout | Evidence:
    kind = draw(st.sampled_from(["proposal", "vote", "timeout", "evidence"]))
    sig = draw(st.binary(min_size=64, max_size=64))
    if kind == "proposal":
        block = draw(blocks())
        tc = None
        if draw(st.booleans()):
            tc = TimeoutCert(block.round - 1 if block.round > 1 else 1, block.qc, ((0, block.qc.round, sig),))
        return Proposal(block, tc, sig)
    if kind == "vote":
        return Vote(draw(rounds), draw(digests), draw(st.integers(0, 1023)), sig)
    if kind == "timeout":
        b = draw(blocks())
        return Timeout(b.round, b.qc, draw(st.integers(0, 3)), sig, None)
    a, b = sorted(draw(st.lists(digests, min_size=2, max_size=2, unique=True)))
    return Evidence(draw(st.sampled_from(list(EvidenceKind))), 1, draw(rounds), a, sig, b, sig)


@given(messages())
def test_every_message_round_trips_through_its_wire_form(message: object) -> None:
    data = encode_message(message)  # type: ignore[arg-type]
    again = decode_message(data)
    assert again == message
    assert encode_message(again) == data  # canonical: one encoding per message


def test_block_id_covers_every_header_field() -> None:
    base = W.block(1, W.genesis, payload=b"x")
    variants = [
        dataclasses.replace(base, round=2),
        dataclasses.replace(base, height=2),
        dataclasses.replace(base, author=2),
        dataclasses.replace(base, payload=b"y"),
        dataclasses.replace(base, data_root=b"\x07" * 32),
    ]
    assert len({base.id, *(v.id for v in variants)}) == len(variants) + 1
    assert base.header().id == base.id


def test_safety_state_round_trips() -> None:
    state = SafetyState(7, W.qc(W.block(1, W.genesis)), 3)
    assert SafetyState.decode(state.encode()) == state
    qc = W.qc(W.block(1, W.genesis))
    with_tc = SafetyState(9, qc, 0, W.tc(8, {0: qc, 1: qc, 2: qc}))
    assert SafetyState.decode(with_tc.encode()) == with_tc
    assert with_tc.resume_round == 9 and state.resume_round == 2


def test_safety_state_written_before_high_tc_still_loads() -> None:
    state = SafetyState(7, W.qc(W.block(1, W.genesis)), 3)
    legacy = pack([7, state.high_qc.to_wire(), 3])
    assert SafetyState.decode(legacy) == state
    with pytest.raises(DecodeError):
        SafetyState.decode(pack([7, state.high_qc.to_wire(), 3, None, 1]))


# -- malformed bytes -----------------------------------------------------------------------------

@given(st.binary(max_size=2048))
def test_random_bytes_decode_or_raise_decode_error_only(data: bytes) -> None:
    try:
        decode_message(data)
    except DecodeError:
        pass


@given(messages(), st.integers(min_value=0, max_value=10_000), st.integers(0, 255))
def test_corrupted_encodings_never_raise_anything_else(message: object, pos: int, byte: int) -> None:
    data = bytearray(encode_message(message))  # type: ignore[arg-type]
    data[pos % len(data)] = byte
    try:
        decode_message(bytes(data))
    except DecodeError:
        pass
    for cut in (1, len(data) // 2, len(data) - 1):
        with pytest.raises(DecodeError):
            decode_message(bytes(data[:cut]))


@pytest.mark.parametrize(
    "structure",
    [
        [],
        [99, []],
        [2, [1, b"\0" * 32, 0]],  # vote with a missing field
        [2, [1, b"\0" * 31, 0, b"\0" * 64]],  # short digest
        [2, [-1, b"\0" * 32, 0, b"\0" * 64]],  # negative round
        [2, [True, b"\0" * 32, 0, b"\0" * 64]],  # bool is not an int
        [2, ["1", b"\0" * 32, 0, b"\0" * 64]],
        [2, [1, b"\0" * 32, 0, b"\0" * 63]],  # short signature
        [4, [1, 1, 5, b"\1" * 32, b"\0" * 64, b"\0" * 32, b"\0" * 64]],  # evidence not canonical
        [4, [9, 1, 5, b"\0" * 32, b"\0" * 64, b"\1" * 32, b"\0" * 64]],  # unknown evidence kind
        {"tag": 2},
    ],
)
def test_malformed_structures_are_rejected(structure: object) -> None:
    with pytest.raises(DecodeError):
        decode_message(pack(structure))


def test_oversize_message_is_rejected_before_decoding() -> None:
    with pytest.raises(DecodeError, match="exceeds"):
        decode_message(b"\x91" + b"\0" * 100, max_size=50)


def test_qc_voters_must_be_unique_and_sorted() -> None:
    sig = b"\1" * 64
    with pytest.raises(DecodeError):
        QuorumCert(1, b"\0" * 32, ((1, sig), (1, sig)))
    with pytest.raises(DecodeError):
        QuorumCert(1, b"\0" * 32, ((2, sig), (1, sig)))
    wire = [1, b"\0" * 32, [[1, sig], [1, sig]]]
    with pytest.raises(DecodeError):
        QuorumCert.from_wire(msgpack.unpackb(pack(wire)))


# -- forged and inconsistent messages ------------------------------------------------------------

def test_valid_vote_qc_proposal_timeout_tc_verify() -> None:
    v = W.verifier()
    b1 = W.block(1, W.genesis)
    verify_vote(W.vote(0, 1, b1.id), v)
    verify_qc(W.qc(b1), v, G())
    verify_proposal(W.proposal(b1), v, G())
    hqc = W.qc(b1)
    verify_timeout(W.timeout(2, 2, hqc), v, G())
    verify_tc(W.tc(2, {0: hqc, 1: hqc, 2: W.genesis_qc}), v, G())


def test_forged_vote_signature_is_rejected() -> None:
    b1 = W.block(1, W.genesis)
    vote = W.vote(0, 1, b1.id)
    forged = dataclasses.replace(vote, voter=1)  # replica 0's signature claimed by replica 1
    with pytest.raises(InvalidMessage, match="invalid vote signature"):
        verify_vote(forged, W.verifier())


def test_vote_signed_for_another_chain_is_rejected() -> None:
    b1 = W.block(1, W.genesis)
    with pytest.raises(InvalidMessage):
        verify_vote(W.vote(0, 1, b1.id, chain_id="other-chain"), W.verifier())


def test_vote_replayed_in_another_round_is_rejected() -> None:
    b1 = W.block(1, W.genesis)
    vote = W.vote(0, 1, b1.id)
    with pytest.raises(InvalidMessage):
        verify_vote(dataclasses.replace(vote, round=2), W.verifier())


def test_vote_signature_does_not_verify_as_a_proposal() -> None:
    b1 = W.block(1, W.genesis, author=1)
    vote_sig = W.vote(1, 1, b1.id).signature
    with pytest.raises(InvalidMessage, match="proposal signature"):
        verify_proposal(Proposal(b1, None, vote_sig), W.verifier(), G())


def test_qc_with_too_few_signers_is_rejected() -> None:
    b1 = W.block(1, W.genesis)
    with pytest.raises(InvalidMessage, match="quorum"):
        verify_qc(W.qc(b1, voters=[0, 1]), W.verifier(), G())


def test_qc_with_signer_outside_committee_is_rejected() -> None:
    b1 = W.block(1, W.genesis)
    qc = W.qc(b1, voters=[0, 1, 2])
    outsider = QuorumCert(qc.round, qc.block_id, (*qc.votes, (9, qc.votes[0][1])))
    with pytest.raises(InvalidMessage, match="not in the committee"):
        verify_qc(outsider, W.verifier(), G())


def test_qc_padded_with_a_duplicated_signature_is_rejected() -> None:
    b1 = W.block(1, W.genesis)
    qc = W.qc(b1, voters=[0, 1])
    padded = QuorumCert(qc.round, qc.block_id, (*qc.votes, (2, qc.votes[0][1])))
    with pytest.raises(InvalidMessage, match="invalid signature"):
        verify_qc(padded, W.verifier(), G())


def test_fake_genesis_qc_is_rejected() -> None:
    with pytest.raises(InvalidMessage, match="genesis"):
        verify_qc(QuorumCert(0, b"\5" * 32, ()), W.verifier(), G())


def test_n7_quorum_is_five() -> None:
    assert W7.committee.quorum == 5 and W7.committee.max_faulty == 2
    b1 = W7.block(1, W7.genesis)
    with pytest.raises(InvalidMessage):
        verify_qc(W7.qc(b1, voters=[0, 1, 2, 3]), W7.verifier(), W7.genesis.id)
    verify_qc(W7.qc(b1, voters=[0, 1, 2, 3, 6]), W7.verifier(), W7.genesis.id)


def test_proposal_skipping_rounds_without_tc_is_rejected() -> None:
    b3 = W.block(3, W.genesis)
    with pytest.raises(InvalidMessage, match="must carry a TC"):
        verify_proposal(W.proposal(b3), W.verifier(), G())


def test_proposal_with_tc_for_wrong_round_is_rejected() -> None:
    b3 = W.block(3, W.genesis)
    tc = W.tc(1, {0: W.genesis_qc, 1: W.genesis_qc, 2: W.genesis_qc})
    with pytest.raises(InvalidMessage, match="TC must be for the round before"):
        verify_proposal(W.proposal(b3, tc), W.verifier(), G())


def test_tc_whose_high_qc_is_not_the_highest_is_rejected() -> None:
    b1 = W.block(1, W.genesis)
    tc = W.tc(2, {0: W.qc(b1), 1: W.genesis_qc, 2: W.genesis_qc})
    lying = TimeoutCert(tc.round, W.genesis_qc, tc.entries)
    with pytest.raises(InvalidMessage, match="high QC"):
        verify_tc(lying, W.verifier(), G())


def test_timeout_with_high_qc_not_older_than_round_is_rejected() -> None:
    b1 = W.block(1, W.genesis)
    with pytest.raises(InvalidMessage, match="older"):
        verify_timeout(W.timeout(0, 1, W.qc(b1)), W.verifier(), G())


def test_timeout_claiming_another_high_qc_round_is_rejected() -> None:
    b1 = W.block(1, W.genesis)
    t = W.timeout(0, 3, W.genesis_qc)
    lying = dataclasses.replace(t, high_qc=W.qc(b1))
    with pytest.raises(InvalidMessage, match="timeout signature"):
        verify_timeout(lying, W.verifier(), G())


# -- evidence and commit proofs ------------------------------------------------------------------

def test_evidence_verifies_and_rejects_forgery() -> None:
    a, b = W.block(1, W.genesis, payload=b"a"), W.block(1, W.genesis, payload=b"b")
    va, vb = W.vote(2, 1, a.id), W.vote(2, 1, b.id)
    ev = Evidence.of(EvidenceKind.DOUBLE_VOTE, 2, 1, (a.id, va.signature), (b.id, vb.signature))
    verify_evidence(ev, W.verifier())
    assert Evidence.decode(ev.encode()) == ev
    framed = dataclasses.replace(ev, offender=3)
    with pytest.raises(InvalidMessage):
        verify_evidence(framed, W.verifier())
    wrong_kind = dataclasses.replace(ev, kind=EvidenceKind.DOUBLE_PROPOSAL)
    with pytest.raises(InvalidMessage):
        verify_evidence(wrong_kind, W.verifier())
    other_round = dataclasses.replace(ev, round=2)
    with pytest.raises(InvalidMessage):
        verify_evidence(other_round, W.verifier())


def test_commit_proof_verifies_and_rejects_tampering() -> None:
    b1, b2, b3 = W.chain([1, 2, 3])
    proof = CommitProof((b1.header(), b2.header()), W.qc(b2))
    assert verify_commit_proof(proof, b1.id, W.verifier(), G()) == b1.header()
    assert CommitProof.from_wire(msgpack.unpackb(pack(proof.to_wire()))) == proof
    # indirect: b1 committed through b2 <- b3 (consecutive) and QC(b3)
    indirect = CommitProof((b1.header(), b2.header(), b3.header()), W.qc(b3))
    verify_commit_proof(indirect, b1.id, W.verifier(), G())
    with pytest.raises(InvalidMessage, match="another block"):
        verify_commit_proof(proof, b2.id, W.verifier(), G())
    with pytest.raises(InvalidMessage):
        verify_commit_proof(CommitProof((b1.header(), b2.header()), W.qc(b2, voters=[0])), b1.id,
                            W.verifier(), G())
    # a gap in rounds at the top is not a 2-chain
    c1 = W.block(1, W.genesis)
    c3 = W.block(3, c1)
    tc_less = CommitProof((c1.header(), c3.header()), W.qc(c3))
    with pytest.raises(InvalidMessage, match="consecutive rounds"):
        verify_commit_proof(tc_less, c1.id, W.verifier(), G())
    # headers that are not a parent chain
    broken = CommitProof((b1.header(), dataclasses.replace(b2.header(), parent_id=b"\0" * 32)), W.qc(b2))
    with pytest.raises(InvalidMessage):
        verify_commit_proof(broken, b1.id, W.verifier(), G())


def test_pack_is_msgpacks_encoding_whatever_came_before() -> None:
    """pack() keeps a Packer per thread: its output is packb's, after a failed call, after a large
    one and in other threads (catches: a buffer not reset after a failure, or after a call)."""
    import threading

    from consensus import encoding

    samples: list[object] = [[1, b"x" * 40, [2, 3]], b"", [[7, [b"p" * 300] * 2000]], {"k": [True, None]}]
    with pytest.raises(TypeError):
        encoding.pack([1, object()])
    big = [b"z" * (encoding.KEEP_PACKER_BELOW + 1)]
    assert encoding.pack(big) == msgpack.packb(big, use_bin_type=True)
    results: dict[str, list[bytes]] = {}

    def run(name: str) -> None:
        results[name] = [encoding.pack(s) for s in samples * 50]

    threads = [threading.Thread(target=run, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    run("main")
    for t in threads:
        t.join()
    expected = [msgpack.packb(s, use_bin_type=True) for s in samples * 50]
    assert all(got == expected for got in results.values()) and len(results) == 5
