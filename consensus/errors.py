"""Typed errors of the protocol core, split by whose fault they are."""

from __future__ import annotations


class ConsensusError(Exception):
    """Base class of every error raised by ``consensus``."""


class DecodeError(ConsensusError):
    """Bytes or a wire structure that is not a well-formed message (a remote's fault)."""


class InvalidMessage(ConsensusError):
    """A well-formed message that fails validation: signature, committee, round, quorum."""


class LocalProtocolError(ConsensusError):
    """The caller used the core wrongly (a bug on our side, never a peer's input)."""


class UnknownBlock(ConsensusError, KeyError):
    """A block id that is not (or no longer) in the block tree: never received, or pruned by a
    commit since the caller looked. The input that referred to it is stale; drop it. Also a
    ``KeyError`` so that callers written against the old untyped lookup keep working."""

    __str__ = ConsensusError.__str__
