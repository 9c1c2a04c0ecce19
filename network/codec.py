"""What the transport needs from the node: turning messages into bytes and back."""

from __future__ import annotations

from typing import Protocol

from consensus.messages import MAX_MESSAGE_SIZE, ConsensusMessage, decode_message, encode_message


class Codec(Protocol):
    """``decode`` gets untrusted bytes; any exception it raises marks the frame undecodable."""

    def encode(self, message: object) -> bytes: ...

    def decode(self, data: bytes) -> object: ...


class ConsensusCodec:
    """A codec for consensus messages only (the node's codec also covers its own messages)."""

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self.max_size = max_size

    def encode(self, message: object) -> bytes:
        if not isinstance(message, ConsensusMessage):
            raise TypeError(f"not a consensus message: {type(message).__name__}")
        return encode_message(message)

    def decode(self, data: bytes) -> ConsensusMessage:
        return decode_message(data, max_size=self.max_size)
