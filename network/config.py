"""Transport configuration."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .handshake import HANDSHAKE_MAX_FRAME


@dataclass(frozen=True, slots=True)
class TransportConfig:
    max_frame_size: int = 8 << 20  # bytes; a larger length prefix closes the connection
    handshake_timeout: float = 5.0  # seconds for the whole handshake, either direction
    connect_timeout: float = 5.0  # seconds for one TCP connect attempt
    write_timeout: float = 10.0  # seconds for one frame write; then the connection is dropped
    send_queue_size: int = 4096  # messages per peer; when full the oldest is dropped
    send_queue_bytes: int = 32 << 20  # bytes per peer, likewise (a peer that is down keeps its queue)
    inbox_size: int = 4096  # received messages not yet taken by the node
    inbox_bytes: int = 32 << 20  # and their encoded bytes (an empty inbox takes any one message)
    reconnect_initial: float = 0.05  # seconds before the first redial
    reconnect_max: float = 2.0  # cap of the exponential redial backoff
    reconnect_jitter: float = 0.5  # each backoff is shortened by up to this fraction, at random
    # Unauthenticated inbound connections (handshake not yet complete) have a budget of their own:
    # when it is full a newcomer evicts the oldest of them (one that has not yet sent its first
    # frame, if any). Authenticated peers never count against it: each holds one slot of its own.
    max_pending_handshakes: int = 32
    hello_timeout: float = 1.0  # seconds for an inbound dialer's first handshake frame to arrive

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{f.name} must be a non-negative number, got {value!r}")
        if self.max_frame_size < HANDSHAKE_MAX_FRAME or self.max_frame_size > (1 << 32) - 1:
            raise ValueError(f"max_frame_size must be in [{HANDSHAKE_MAX_FRAME}, 2**32 - 1]")
        for name in ("handshake_timeout", "hello_timeout", "connect_timeout", "write_timeout", "reconnect_initial"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.reconnect_max < self.reconnect_initial:
            raise ValueError("reconnect_max must be at least reconnect_initial")
        if not 0 <= self.reconnect_jitter <= 1:
            raise ValueError("reconnect_jitter must be in [0, 1]")
        for name in ("send_queue_size", "send_queue_bytes", "inbox_size", "inbox_bytes", "max_pending_handshakes"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer")
