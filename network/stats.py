"""Transport counters: plain ints and Counters, no metrics library.

Per-peer counters are keyed by replica id, per-reason counters by the stable labels of
:class:`network.errors.HandshakeFailure` and :attr:`network.errors.FrameError.reason`. The node
turns :meth:`TransportStats.snapshot` into Prometheus text.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

# Labels of rejected_frames besides the FrameError reasons ("oversize", "empty", "truncated").
UNDECODABLE = "undecodable"
UNEXPECTED_DATA = "unexpected_data"  # a peer wrote on a connection that is ours to write
# Labels of inbound_refused: an unauthenticated connection closed to make room for a newcomer,
# before or after its first handshake frame arrived.
EVICTED_SILENT = "evicted_silent"
EVICTED_IN_HANDSHAKE = "evicted_in_handshake"
OUTBOUND = "outbound"
INBOUND = "inbound"


@dataclass(slots=True)
class TransportStats:
    frames_out: Counter[int] = field(default_factory=Counter)
    bytes_out: Counter[int] = field(default_factory=Counter)
    frames_in: Counter[int] = field(default_factory=Counter)
    bytes_in: Counter[int] = field(default_factory=Counter)
    rejected_frames: Counter[str] = field(default_factory=Counter)
    handshake_failures: Counter[str] = field(default_factory=Counter)
    queue_drops: Counter[int] = field(default_factory=Counter)  # oldest message evicted, by peer
    fault_drops_out: Counter[int] = field(default_factory=Counter)
    fault_drops_in: Counter[int] = field(default_factory=Counter)
    connections_opened: Counter[str] = field(default_factory=Counter)  # authenticated, by direction
    connections_closed: Counter[str] = field(default_factory=Counter)
    connections_replaced: int = 0  # an older inbound connection superseded by a newer one
    dial_failures: Counter[int] = field(default_factory=Counter)
    write_timeouts: Counter[int] = field(default_factory=Counter)
    inbound_refused: Counter[str] = field(default_factory=Counter)  # unauthenticated, by reason
    send_refused: int = 0  # send() to ourselves or to an id outside the committee
    send_oversize: int = 0  # encoded message larger than max_frame_size; not sent
    encode_errors: int = 0

    def snapshot(self) -> dict[str, Any]:
        """A JSON-friendly copy: Counter keys become strings."""
        result: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Counter):
                value = {str(k): v for k, v in sorted(value.items())}
            result[f.name] = value
        return result
