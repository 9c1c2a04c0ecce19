"""ordo's replica-to-replica network: framing, authenticated handshake, transport, fault layer."""

from .codec import Codec, ConsensusCodec
from .config import TransportConfig
from .errors import (
    EmptyFrame,
    FrameError,
    FrameTooLarge,
    HandshakeError,
    HandshakeFailure,
    NetworkError,
    TruncatedFrame,
)
from .faults import FaultRules, PeerFaults
from .framing import FrameDecoder, encode_frame, read_frame, send_frame
from .handshake import Identity, accept, dial
from .stats import TransportStats
from .transport import Transport

__all__ = [
    "Codec",
    "ConsensusCodec",
    "EmptyFrame",
    "FaultRules",
    "FrameDecoder",
    "FrameError",
    "FrameTooLarge",
    "HandshakeError",
    "HandshakeFailure",
    "Identity",
    "NetworkError",
    "PeerFaults",
    "Transport",
    "TransportConfig",
    "TransportStats",
    "TruncatedFrame",
    "accept",
    "dial",
    "encode_frame",
    "read_frame",
    "send_frame",
]
