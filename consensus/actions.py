"""What the core asks its I/O layer to do. Execute them in the order returned: a
``PersistSafety`` must be durable before any later ``Send``/``Broadcast`` leaves."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .commit_proof import CommitProof
from .messages import Block, BlockId, ConsensusMessage, Evidence, ReplicaId
from .safety import NotSafeToTimeout, NotSafeToVote, SafetyState


@dataclass(frozen=True, slots=True)
class Send:
    to: ReplicaId
    message: ConsensusMessage


@dataclass(frozen=True, slots=True)
class Broadcast:
    """To every other replica."""

    message: ConsensusMessage


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Call ``on_timeout(round)`` after ``duration`` seconds; replaces any earlier timer."""

    round: int
    duration: float


@dataclass(frozen=True, slots=True)
class PersistSafety:
    state: SafetyState


@dataclass(frozen=True, slots=True)
class PersistBlock:
    """Store an uncommitted block this replica is about to vote for (or propose). After a restart
    the replica reloads them: a QC's block is then on the disks of its 2f+1 voters, so a leader
    can always extend its high QC, even after the whole cluster restarted."""

    block: Block


@dataclass(frozen=True, slots=True)
class Commit:
    block: Block
    proof: CommitProof


@dataclass(frozen=True, slots=True)
class RecordEvidence:
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class FetchBlocks:
    """Ask ``peer`` for ``target``'s chain above height ``above_height`` and pass its answer,
    newest first (``target`` first), to ``on_blocks``."""

    peer: ReplicaId
    target: BlockId
    above_height: int


@dataclass(frozen=True, slots=True)
class RequestPayload:
    """This replica leads ``round``: build a payload extending ``parent`` (``ancestors`` are the
    uncommitted blocks from the root's child up to the parent, so nothing is proposed twice) and
    call ``on_payload_ready``."""

    round: int
    parent: Block
    ancestors: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class VerifyPayload:
    """Check (fetching what is missing) that ``block``'s payload is available and valid, then call
    ``on_payload_verified``. Voting waits for the answer."""

    block: Block


class DropKind(StrEnum):
    """What the core dropped, or declined to sign (the value is the metric label)."""

    PROPOSAL = "Proposal"  # a proposal that does not verify (signature, leader, height, QC, TC)
    PAYLOAD = "Payload"  # a proposal whose payload the I/O layer found invalid
    VOTE = "Vote"
    TIMEOUT = "Timeout"
    EVIDENCE = "Evidence"
    BLOCKS = "Blocks"  # an answer to FetchBlocks
    SYNC = "Sync"  # committed blocks from catch-up (``sender`` is this replica)
    UNEXPECTED = "Unexpected"  # not a consensus message at all
    NOT_SAFE_TO_VOTE = "NotSafeToVote"  # a proposal (maybe its own) the vote rule refused
    NOT_SAFE_TO_TIMEOUT = "NotSafeToTimeout"  # its own timeout, refused by the timeout rule


@dataclass(frozen=True, slots=True)
class Dropped:
    """A peer's input was rejected, or the safety rules refused to sign (``refusal`` then holds
    the rule and the rounds it compared); count and log it. ``reason`` is for the log."""

    sender: ReplicaId
    kind: DropKind
    reason: str
    refusal: NotSafeToVote | NotSafeToTimeout | None = None


@dataclass(frozen=True, slots=True)
class RoundEntered:
    """Informational: the replica entered ``round`` (by TC if ``by_tc``)."""

    round: int
    by_tc: bool


Action = (
    Send | Broadcast | SetTimer | PersistSafety | PersistBlock | Commit | RecordEvidence | FetchBlocks
    | RequestPayload | VerifyPayload | Dropped | RoundEntered
)
