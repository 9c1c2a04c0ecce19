"""Proof that a block is committed, checkable with the committee's public keys alone.

A block B is committed when some descendant D has a child C with ``round(C) = round(D) + 1`` and a
QC certifies C (the 2-chain rule). The proof is the header chain ``B .. D, C`` plus ``QC(C)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .crypto import Verifier
from .encoding import expect_list
from .errors import InvalidMessage
from .messages import Block, BlockHeader, BlockId, QuorumCert
from .validation import verify_qc

MAX_PROOF_HEADERS = 4096


@dataclass(frozen=True, slots=True)
class CommitProof:
    headers: tuple[BlockHeader, ...]
    qc: QuorumCert

    @property
    def block_id(self) -> BlockId:
        return self.headers[0].id

    def to_wire(self) -> list[Any]:
        return [[h.to_wire() for h in self.headers], self.qc.to_wire()]

    @classmethod
    def from_wire(cls, wire: Any) -> CommitProof:
        headers, qc = expect_list(wire, "commit_proof", length=2)
        items = expect_list(headers, "commit_proof.headers", max_len=MAX_PROOF_HEADERS)
        return cls(tuple(BlockHeader.from_wire(h) for h in items), QuorumCert.from_wire(qc))


def verify_commit_proof(
    proof: CommitProof, block_id: BlockId, verifier: Verifier, genesis_id: bytes
) -> BlockHeader:
    """Check that ``block_id`` is committed; returns its header. Raises InvalidMessage."""
    headers = proof.headers
    if len(headers) < 2:
        raise InvalidMessage("a commit proof needs at least the block and one child header")
    ids = [h.id for h in headers]
    if ids[0] != block_id:
        raise InvalidMessage("commit proof is for another block")
    for parent, child, parent_id in zip(headers, headers[1:], ids, strict=False):
        if child.parent_id != parent_id or child.parent_round != parent.round:
            raise InvalidMessage("commit proof headers are not a parent chain")
        if child.height != parent.height + 1:
            raise InvalidMessage("commit proof heights are not consecutive")
    if headers[-1].round != headers[-2].round + 1:
        raise InvalidMessage("the last two headers of a commit proof must have consecutive rounds")
    if proof.qc.block_id != ids[-1] or proof.qc.round != headers[-1].round:
        raise InvalidMessage("the commit proof's QC does not certify its last header")
    # (the QC's round is the last header's, one above another header's: never the genesis QC's 0)
    verify_qc(proof.qc, verifier, genesis_id)
    return headers[0]


def proofs_for_chain(blocks: list[Block], tail: CommitProof) -> list[CommitProof]:
    """Commit proofs for every block of a hash-linked chain (oldest first) whose last block is
    proven by ``tail``. A block followed by a consecutive-round child whose QC is in the chain gets
    a direct two-header proof; any other block chains onto the next block's proof."""
    if not blocks:
        return []
    if tail.block_id != blocks[-1].id:
        raise InvalidMessage("the tail proof is not for the chain's last block")
    proofs: list[CommitProof] = [tail] * len(blocks)
    headers = [b.header() for b in blocks]
    for i in range(len(blocks) - 2, -1, -1):
        if blocks[i + 1].round == blocks[i].round + 1 and i + 2 < len(blocks):
            proofs[i] = CommitProof((headers[i], headers[i + 1]), blocks[i + 2].qc)
        else:
            following = proofs[i + 1]
            proofs[i] = CommitProof((headers[i], *following.headers), following.qc)
    return proofs
