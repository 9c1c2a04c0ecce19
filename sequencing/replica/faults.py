"""A replica's own fault injection, in one place; never on by default. Two kinds:

- Byzantine behaviour it is started with (``ordo replica --byzantine MODE``, ``ordo up --byzantine
  ID:MODE``), one of :data:`BYZANTINE_MODES`:

  - ``double-vote`` follows every vote it broadcasts with a second signed vote for a made-up block
    in the same round (slashing evidence for the others to find);
  - ``equivocating-leader``: when it leads, it signs a second proposal for its round (the same
    block with an empty payload) and sends its own proposal to its half of the committee, the
    other one to the other half (a round whose payload is empty anyway is proposed once: there is
    no second valid payload to sign);
  - ``censor:ROLLUP``: as leader it never proposes a batch holding a transaction of that rollup
    (it proposes the others as usual);
  - ``censor-all``: as leader it proposes nothing (its rounds time out).
- Storage crash points (``ORDO_CRASH_AT=<crash point>:<n>``, tests only): the process dies like
  kill -9 the n-th time storage reaches that point.

The node asks one ``FaultInjection`` (built from its ``NodeOptions``) and never tests a mode itself.
Elsewhere: transport faults (drop/delay/partition) are ``network/faults.py``, set at run time through
the admin API (``sequencing/api``); simulated Byzantine replicas are ``consensus/simulation/``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache

from consensus.crypto import SignatureKind, Signer
from consensus.encoding import hash_bytes
from consensus.messages import Block, ConsensusMessage, Proposal, ReplicaId, Vote

from ..rollup.batches import Batch
from ..rollup.block_content import BlockPayload, assemble

BYZANTINE_MODES = ("double-vote", "equivocating-leader", "censor:ROLLUP", "censor-all")
BYZANTINE_HELP = (
    "double-vote: sign a second, conflicting vote every round; equivocating-leader: as leader, sign "
    "two different proposals for the round and send one to each half of the committee; "
    "censor:ROLLUP: as leader, leave out every batch holding a transaction of rollup ROLLUP; "
    "censor-all: as leader, propose nothing"
)
CrashHook = Callable[[str], None]
Route = tuple[ReplicaId | None, ConsensusMessage]  # (peer, message); None: to every peer


class UnknownFaultMode(ValueError):
    """A ``--byzantine`` mode this replica does not know."""


@dataclass(frozen=True, slots=True)
class ByzantineMode:
    name: str
    rollup: int | None = None  # censor:ROLLUP

    @classmethod
    def parse(cls, spec: str) -> ByzantineMode:
        name, colon, arg = spec.partition(":")
        if name == "censor" and colon:
            if not arg.isdigit() or int(arg) > 2**32 - 1:
                raise UnknownFaultMode(f"--byzantine censor:ROLLUP needs a rollup id, got {spec!r}")
            return cls(name, int(arg))
        if colon or name not in BYZANTINE_MODES or name == "censor":
            raise UnknownFaultMode(f"unknown --byzantine mode {spec!r}; known: {', '.join(BYZANTINE_MODES)}")
        return cls(name)


def parse_byzantine(spec: str) -> str:
    """An argparse ``type``: the mode as given, if it is one (raises ValueError otherwise)."""
    ByzantineMode.parse(spec)
    return spec


def conflicting_vote(signer: Signer, vote: Vote) -> Vote:
    """A second signed vote for a made-up block in the same round ("double-vote")."""
    fake = hash_bytes(b"ordo/byzantine" + vote.block_id)
    return Vote(vote.round, fake, signer.replica_id, signer.sign(SignatureKind.VOTE, vote.round, fake))


EMPTY_PAYLOAD = BlockPayload((), ()).encode()


@cache
def _empty_root() -> bytes:
    return assemble([]).data_root


def conflicting_proposal(signer: Signer, proposal: Proposal) -> Proposal | None:
    """The same block with an empty payload (valid: any voter checks it like the first), signed
    for the same round; None when the proposal's payload is empty already."""
    block = proposal.block
    if block.payload == EMPTY_PAYLOAD:
        return None
    twin = Block(block.round, block.height, block.qc, block.author, EMPTY_PAYLOAD, _empty_root())
    return Proposal(twin, proposal.last_tc, signer.sign(SignatureKind.PROPOSAL, twin.round, twin.id))


def batch_has_rollup(batch: Batch, rollup_id: int) -> bool:
    """Whether any transaction of ``batch`` (plain or in a bundle) is for ``rollup_id``."""
    return (any(rid == rollup_id for rid, _ in batch.groups)
            or any(tx.rollup_id == rollup_id for bundle in batch.bundles for tx in bundle.txs))


class FaultInjection:
    """What a replica does besides the protocol in a fault-injection run (nothing by default)."""

    def __init__(self, signer: Signer, *, byzantine: str | None = None, peers: Iterable[ReplicaId] = (),
                 storage_crash_hook: CrashHook | None = None) -> None:
        self.mode = ByzantineMode.parse(byzantine) if byzantine is not None else None
        name = self.mode.name if self.mode is not None else None
        self._signer = signer
        self.double_vote = name == "double-vote"
        self.equivocate = name == "equivocating-leader"
        self.withholds_proposals = name == "censor-all"
        self.censored_rollup = self.mode.rollup if self.mode is not None else None
        self.storage_crash_hook = storage_crash_hook
        ordered = sorted(peers)
        # the committee's halves: this replica and the first peers are shown its own proposal
        shown_own = (len(ordered) + 1) // 2 - 1
        self._own_half, self._other_half = ordered[:shown_own], ordered[shown_own:]

    def broadcast(self, message: ConsensusMessage) -> list[Route]:
        """Where a message the core broadcasts goes, and what goes with it: by default just
        ``[(None, message)]`` (every peer)."""
        me = self._signer.replica_id
        if self.double_vote and isinstance(message, Vote) and message.voter == me:
            return [(None, message), (None, conflicting_vote(self._signer, message))]
        if self.equivocate and isinstance(message, Proposal) and message.author == me:
            other = conflicting_proposal(self._signer, message)
            if other is not None:
                routes: list[Route] = [(peer, message) for peer in self._own_half]
                routes += [(peer, other) for peer in self._other_half]
                return routes
        return [(None, message)]

    @property
    def leave_out(self) -> Callable[[Batch], bool] | None:
        """A test for the batches this replica, as leader, will not propose (None: it proposes any)."""
        rollup = self.censored_rollup
        if rollup is None:
            return None
        return lambda batch: batch_has_rollup(batch, rollup)


def crash_hook_from_env(environ: Mapping[str, str] = os.environ) -> CrashHook | None:
    """``ORDO_CRASH_AT=<crash point>:<n>`` (test-only): die like kill -9 (``os._exit``, nothing
    flushed or closed) the n-th time storage reaches that point, e.g. ``append:slices:3``."""
    spec = environ.get("ORDO_CRASH_AT")
    if not spec:
        return None
    point, _, count = spec.rpartition(":")
    remaining = [int(count)]

    def hook(name: str) -> None:
        if name == point:
            remaining[0] -= 1
            if remaining[0] <= 0:
                os.write(2, f"ORDO_CRASH_AT: dying at {name}\n".encode())
                os._exit(137)

    return hook
