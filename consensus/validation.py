"""Checks that need the committee: signatures, quorums, signer membership.

Each ``verify_*`` raises :class:`InvalidMessage` with a reason, or returns ``None``. Nothing here
depends on a replica's local state; the round and leader checks that do live in :mod:`core`.
"""

from __future__ import annotations

from .crypto import SignatureKind, Verifier
from .errors import InvalidMessage
from .messages import Block, Proposal, QuorumCert, Timeout, TimeoutCert, Vote


def timeout_payload(high_qc_round: int) -> bytes:
    return high_qc_round.to_bytes(8, "big")


def verify_qc(qc: QuorumCert, verifier: Verifier, genesis_id: bytes) -> None:
    if qc.round == 0:
        if qc.block_id != genesis_id or qc.votes:
            raise InvalidMessage("a round-0 QC must be the genesis certificate")
        return
    committee = verifier.committee
    if len(qc.votes) < committee.quorum:
        raise InvalidMessage(f"QC has {len(qc.votes)} votes, quorum is {committee.quorum}")
    for voter, sig in qc.votes:
        if not committee.contains(voter):
            raise InvalidMessage(f"QC signer {voter} is not in the committee")
        if not verifier.verify(voter, SignatureKind.VOTE, qc.round, qc.block_id, sig):
            raise InvalidMessage(f"QC carries an invalid signature from replica {voter}")


def verify_tc(tc: TimeoutCert, verifier: Verifier, genesis_id: bytes) -> None:
    committee = verifier.committee
    if len(tc.entries) < committee.quorum:
        raise InvalidMessage(f"TC has {len(tc.entries)} timeouts, quorum is {committee.quorum}")
    if tc.high_qc.round != tc.max_hqc_round:
        raise InvalidMessage("TC high QC round differs from the highest round its timeouts carry")
    if tc.high_qc.round >= tc.round:
        raise InvalidMessage("TC high QC must be older than the TC")
    for author, hqc_round, sig in tc.entries:
        if not committee.contains(author):
            raise InvalidMessage(f"TC signer {author} is not in the committee")
        # (each entry's high-QC round is below tc.round: it is at most high_qc.round, checked above)
        payload = timeout_payload(hqc_round)
        if not verifier.verify(author, SignatureKind.TIMEOUT, tc.round, payload, sig):
            raise InvalidMessage(f"TC carries an invalid signature from replica {author}")
    verify_qc(tc.high_qc, verifier, genesis_id)


def verify_vote(vote: Vote, verifier: Verifier) -> None:
    if vote.round == 0:
        raise InvalidMessage("no votes in round 0")
    if not verifier.committee.contains(vote.voter):
        raise InvalidMessage(f"vote from replica {vote.voter}, not in the committee")
    if not verifier.verify(vote.voter, SignatureKind.VOTE, vote.round, vote.block_id, vote.signature):
        raise InvalidMessage(f"invalid vote signature from replica {vote.voter}")


def verify_timeout(timeout: Timeout, verifier: Verifier, genesis_id: bytes) -> None:
    if not verifier.committee.contains(timeout.author):
        raise InvalidMessage(f"timeout from replica {timeout.author}, not in the committee")
    if timeout.high_qc.round >= timeout.round:
        raise InvalidMessage("a timeout's high QC must be older than its round")
    payload = timeout_payload(timeout.high_qc.round)
    if not verifier.verify(
        timeout.author, SignatureKind.TIMEOUT, timeout.round, payload, timeout.signature
    ):
        raise InvalidMessage(f"invalid timeout signature from replica {timeout.author}")
    verify_qc(timeout.high_qc, verifier, genesis_id)
    if timeout.last_tc is not None:
        if timeout.last_tc.round != timeout.round - 1:
            raise InvalidMessage("a timeout's TC must be for the previous round")
        verify_tc(timeout.last_tc, verifier, genesis_id)


def verify_block_certificate(block: Block, verifier: Verifier, genesis_id: bytes) -> None:
    """The structure and parent certificate of a block (not its author's proposal signature)."""
    if block.height == 0:
        raise InvalidMessage("only the genesis block has height 0")
    if not verifier.committee.contains(block.author):
        raise InvalidMessage(f"block author {block.author} is not in the committee")
    verify_qc(block.qc, verifier, genesis_id)


def verify_proposal(proposal: Proposal, verifier: Verifier, genesis_id: bytes) -> None:
    block = proposal.block
    verify_block_certificate(block, verifier, genesis_id)
    if not verifier.verify(
        block.author, SignatureKind.PROPOSAL, block.round, block.id, proposal.signature
    ):
        raise InvalidMessage(f"invalid proposal signature from replica {block.author}")
    tc = proposal.last_tc
    if tc is not None:
        if tc.round != block.round - 1:
            raise InvalidMessage("a proposal's TC must be for the round before the block")
        verify_tc(tc, verifier, genesis_id)
    elif block.qc.round != block.round - 1:
        raise InvalidMessage("a proposal not following its QC's round must carry a TC")
