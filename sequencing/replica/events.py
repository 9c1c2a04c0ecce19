"""What the node's core loop handles, one frozen dataclass per kind of input; :data:`Event` is
their union and the loop matches on it exhaustively (a new kind is a mypy error until handled).

The transport, the round timer, catch-up, the peer service and the node's own tasks post events
through a :data:`Post` callable (``Node.post``), which returns False (and counts a drop) when
the loop's bounded inbox is full. ``input`` names the kind in ``ordo_input_errors_total``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from consensus.actions import RequestPayload
from consensus.commit_proof import CommitProof
from consensus.messages import Block, ConsensusMessage


@dataclass(frozen=True, slots=True)
class MessageIn:
    """A consensus message from a peer (authenticated by the transport)."""

    input: ClassVar[str] = "message"
    sender: int
    message: ConsensusMessage


@dataclass(frozen=True, slots=True)
class TimerFired:
    """The round timer expired for ``round``."""

    input: ClassVar[str] = "timeout"
    round: int


@dataclass(frozen=True, slots=True)
class BlocksIn:
    """A peer's answer to a ``FetchBlocks`` (a ``BlockResponse``)."""

    input: ClassVar[str] = "blocks"
    sender: int
    blocks: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class Synced:
    """Committed blocks fetched by catch-up, with the commit proof of the last one."""

    input: ClassVar[str] = "synced"
    blocks: tuple[Block, ...]
    proof: CommitProof


@dataclass(frozen=True, slots=True)
class Recheck:
    """The batches a proposal's payload lacked have arrived: verify its payload again."""

    input: ClassVar[str] = "recheck"
    block: Block


@dataclass(frozen=True, slots=True)
class Propose:
    """Build the payload the core asked for (after waiting ``idle_block_delay`` for a batch)."""

    input: ClassVar[str] = "propose"
    request: RequestPayload


Event = MessageIn | TimerFired | BlocksIn | Synced | Recheck | Propose
Post = Callable[[Event], bool]
