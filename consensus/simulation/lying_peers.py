"""Byzantine peers that lie outside consensus messages: a leader withholding payloads, and
catch-up peers that lie about their height or rewrite the certificates in the blocks they serve
(the certificate liars are in lying.py)."""

from __future__ import annotations

from ..commit_proof import CommitProof
from ..messages import Block, ConsensusMessage, Proposal, QuorumCert
from .lying import FORGED_SIGNATURE
from .node import SimNode


class Withholder(SimNode):
    """An honest leader except that it keeps each block's payload from the f replicas after it
    for ``WITHHOLD_FOR`` seconds: they cannot vote, the others commit without them, and the
    payload reaches them after its block was committed (the real node's crash, issue 8 item 1)."""

    honest = False
    WITHHOLD_FOR = 1.5

    def broadcast(self, message: ConsensusMessage) -> None:
        if isinstance(message, Proposal) and message.author == self.replica_id:
            n = self.sim.config.n
            for k in range(1, self.sim.committee.max_faulty + 1):
                victim = (self.replica_id + k) % n
                self.sim.withheld[(victim, message.block.id)] = self.sim.now + self.WITHHOLD_FOR
        super().broadcast(message)


class HeightLiar(SimNode):
    """Claims a committed height far above everyone's and serves nothing (catch-up)."""

    honest = False

    def status_height(self) -> int:
        return 10**9

    def serve_sync(self, from_height: int, limit: int) -> tuple[list[Block], CommitProof] | None:
        return None


class SyncRewriter(SimNode):
    """Serves genuine committed blocks with the QCs embedded in them rewritten: same voters,
    signatures that do not verify. A block's id does not cover its QC's signatures, so the chain
    still hash-links and the (genuine) tail proof still verifies."""

    honest = False

    def status_height(self) -> int:
        return super().status_height() + 1  # so that it is the one asked

    def serve_sync(self, from_height: int, limit: int) -> tuple[list[Block], CommitProof] | None:
        answer = super().serve_sync(from_height, limit)
        if answer is None:
            return None
        blocks, proof = answer
        return [_rewrite_qc(b) for b in blocks], proof


def _rewrite_qc(block: Block) -> Block:
    qc = block.qc
    if qc.round == 0:
        return block
    forged = QuorumCert(qc.round, qc.block_id, tuple((v, FORGED_SIGNATURE) for v, _ in qc.votes))
    return Block(block.round, block.height, forged, block.author, block.payload, block.data_root)
