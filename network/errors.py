"""Typed errors of the network layer.

Frame and handshake errors are a remote's fault: the transport counts them, closes the offending
connection and keeps going; they never escape :meth:`network.transport.Transport.run`.
"""

from __future__ import annotations

from enum import StrEnum


class NetworkError(Exception):
    """Base class of every error raised by ``network``."""


class FrameError(NetworkError):
    """The byte stream is not a well-formed sequence of frames. ``reason`` is a stats label."""

    reason = "malformed"


class FrameTooLarge(FrameError):
    """A length prefix announced more than the maximum frame size (refused before the body)."""

    reason = "oversize"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit}")
        self.size = size
        self.limit = limit


class EmptyFrame(FrameError):
    """A length prefix of zero: no message is empty, so this is malformed input."""

    reason = "empty"

    def __init__(self) -> None:
        super().__init__("zero-length frame")


class TruncatedFrame(FrameError):
    """The stream ended in the middle of a frame."""

    reason = "truncated"

    def __init__(self, buffered: int) -> None:
        super().__init__(f"stream ended inside a frame ({buffered} bytes buffered)")
        self.buffered = buffered


class HandshakeFailure(StrEnum):
    """Why a handshake was refused; the values are stable stats labels and wire refusal codes."""

    VERSION = "version"
    CHAIN_ID = "chain_id"
    NOT_IN_COMMITTEE = "not_in_committee"
    BAD_SIGNATURE = "bad_signature"
    SELF_ID = "self_id"
    UNEXPECTED_PEER = "unexpected_peer"
    MALFORMED = "malformed"
    TIMEOUT = "timeout"
    HELLO_TIMEOUT = "hello_timeout"  # an inbound dialer's first frame did not arrive in time
    CLOSED = "closed"
    REFUSED = "refused"


class HandshakeError(NetworkError):
    """The authenticated handshake failed. ``reason`` is a :class:`HandshakeFailure`."""

    def __init__(self, reason: HandshakeFailure, detail: str = "") -> None:
        super().__init__(f"handshake failed ({reason.value}){': ' + detail if detail else ''}")
        self.reason = reason
        self.detail = detail
