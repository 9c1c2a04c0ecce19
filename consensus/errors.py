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
