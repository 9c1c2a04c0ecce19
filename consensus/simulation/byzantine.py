"""Byzantine behaviours for simulated replicas. Each is honest code plus one deviation, so the
faulty replica still participates enough to do damage."""

from __future__ import annotations

from ..crypto import SignatureKind
from ..encoding import hash_bytes
from ..messages import Block, ConsensusMessage, Proposal, ReplicaId, Vote
from .node import SimNode, decode_payload, encode_payload

# An empty list in a non-canonical msgpack form: a valid, different payload when there are no
# transactions to vary.
_ALT_EMPTY_PAYLOAD = b"\xdc\x00\x00"


class SilentNode(SimNode):
    """Crash-like but never restarts: runs the protocol and sends nothing."""

    honest = False

    def send(self, to: ReplicaId, message: ConsensusMessage) -> None:
        return

    def broadcast(self, message: ConsensusMessage) -> None:
        return


class EquivocatingLeader(SimNode):
    """When leading, signs two different blocks for its round and shows each to half the peers.
    With ``leak`` (the default) the first peer gets both, so an honest replica witnesses it."""

    honest = False
    leak = True

    def broadcast(self, message: ConsensusMessage) -> None:
        if not isinstance(message, Proposal) or message.author != self.replica_id:
            super().broadcast(message)
            return
        block = message.block
        txs = decode_payload(block.payload)
        payload = encode_payload(txs[:-1]) if txs else _ALT_EMPTY_PAYLOAD
        twin = Block(block.round, block.height, block.qc, block.author, payload, hash_bytes(payload))
        other = Proposal(
            twin, message.last_tc, self.signer.sign(SignatureKind.PROPOSAL, twin.round, twin.id)
        )
        peers = [r for r in self.sim.replica_ids if r != self.replica_id]
        for i, peer in enumerate(peers):
            self.sim.send(self, peer, message if i % 2 == 0 else other)
        if self.leak and len(peers) > 1:
            self.sim.send(self, peers[0], other)


class DoubleVoter(SimNode):
    """Every vote it casts is followed by a signed vote for a different block in the same round,
    sent to everyone."""

    honest = False

    def broadcast(self, message: ConsensusMessage) -> None:
        super().broadcast(message)
        if isinstance(message, Vote) and message.voter == self.replica_id:
            fake = hash_bytes(b"double-vote" + message.block_id)
            conflicting = Vote(
                message.round, fake, self.replica_id,
                self.signer.sign(SignatureKind.VOTE, message.round, fake),
            )
            for peer in self.sim.replica_ids:
                if peer != self.replica_id:
                    self.sim.send(self, peer, conflicting)


class TwinNode(SimNode):
    """Honest code; the Byzantine part is that a second instance shares its key."""

    honest = False
