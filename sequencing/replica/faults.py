"""Byzantine behaviour a replica can be started with for fault-injection runs (``--byzantine``);
never on by default."""

from __future__ import annotations

from consensus.crypto import SignatureKind, Signer
from consensus.encoding import hash_bytes
from consensus.messages import Vote


def conflicting_vote(signer: Signer, vote: Vote) -> Vote:
    """A second signed vote for a made-up block in the same round ("double-vote")."""
    fake = hash_bytes(b"ordo/byzantine" + vote.block_id)
    return Vote(vote.round, fake, signer.replica_id, signer.sign(SignatureKind.VOTE, vote.round, fake))
